"""The benchmark's own database and web server: create/migrate `portal_bench`, run gunicorn, get a token."""
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def database_url_named(url, name):
    """The same server, another database: only the path of the URL changes (host/socket query stays)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def redis_url_with_db(url, db):
    """The same Redis, database `db`: a query parameter for unix sockets, the path for redis:// URLs."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = "&".join(q for q in parts.query.split("&") if q and not q.startswith("db="))
        return f"unix://{parts.netloc}{parts.path}?" + (query + "&" if query else "") + f"db={db}"  # urlunsplit drops the //
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def _admin_connect(url):
    return psycopg.connect(database_url_named(url, "postgres"), autocommit=True)


def database_exists(url, name):
    with _admin_connect(url) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def database_drop(url, name):
    with _admin_connect(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_create(url, name):
    with _admin_connect(url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def entity_count(url, blueprints=None):
    """Entities in a migrated bench database (of `blueprints` only, when given), or None when it holds no
    catalog tables. The synthetic catalog is counted by its blueprints: the lock and deployment measurements
    add starter-catalog entities and deployments next to it."""
    try:
        with psycopg.connect(url) as conn:
            if conn.execute("SELECT to_regclass('catalog_entity')").fetchone()[0] is None:
                return None
            if blueprints is None:
                return conn.execute("SELECT count(*) FROM catalog_entity").fetchone()[0]
            return conn.execute("SELECT count(*) FROM catalog_entity e JOIN catalog_blueprint b ON b.id = e.blueprint_id"
                                " WHERE b.identifier = ANY(%s)", [list(blueprints)]).fetchone()[0]
    except psycopg.OperationalError:
        return None


def bench_secret_key():
    """SECRET_KEY for the bench's processes (they run on DATABASE_URL, so the portal wants one): the configured
    key, else one for this run; the bench database is the bench's own."""
    return os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50)


def manage(env, *args, timeout=600):
    """Run manage.py with the bench environment; returns stdout (raises with stderr on failure)."""
    proc = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """`gunicorn portal.wsgi` in its own session; stop() ends the master and every worker, whatever happens."""

    def __init__(self, env, *, workers, threads, log_path):
        self.env, self.workers, self.threads, self.log_path = env, workers, threads, Path(log_path)
        self.port = free_port()
        self.proc = None
        self._log = None

    def start(self, timeout=60):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        command = [str(VENV_BIN / "gunicorn"), "portal.wsgi", "--config", "python:portal.gunicorn_config", "--workers", str(self.workers), "--threads", str(self.threads),
                   "--bind", f"127.0.0.1:{self.port}", "--keep-alive", "30", "--timeout", "120",
                   "--error-logfile", "-", "--log-level", "warning"]
        self.proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log_path}:\n{self._tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                if len(self.worker_pids()) >= self.workers:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not listen on port {self.port} within {timeout}s; see {self.log_path}")

    def _tail(self):
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text().splitlines()[-30:])
        return ""

    def worker_pids(self):
        import psutil

        if self.proc is None or self.proc.poll() is not None:
            return []
        with contextlib.suppress(psutil.Error):
            return [child.pid for child in psutil.Process(self.proc.pid).children()]
        return []

    def worker_stats(self):
        """Per worker: RSS now, peak RSS (VmHWM) and CPU seconds used so far."""
        import psutil

        stats = []
        for pid in self.worker_pids():
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                cpu = proc.cpu_times()
                stats.append({"pid": pid, "rss_mb": proc.memory_info().rss / 2**20, "peak_rss_mb": _peak_rss_mb(pid),
                              "cpu_s": cpu.user + cpu.system})
        return stats

    def cpu_seconds(self):
        return sum(s["cpu_s"] for s in self.worker_stats())

    def stop(self):
        import psutil

        if self.proc is None:
            return
        workers = []
        for pid in self.worker_pids():
            with contextlib.suppress(psutil.Error):
                workers.append(psutil.Process(pid))
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the master stops its workers gracefully
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        # A master killed hard leaves its workers behind: end exactly those (same pid and start time).
        for worker in workers:
            with contextlib.suppress(psutil.Error):
                if worker.is_running():
                    worker.kill()
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None


class CeleryWorker:
    """`celery -A portal worker` (one process, as the work after a commit needs) in its own session: what the portal's
    outbox hands over after a request (a deployment report's aggregation refresh, automations) is done on this machine
    during the measurement, as `make demo` and production do, not left queued."""

    def __init__(self, env, *, log_path):
        self.env, self.log_path, self.proc, self._log = env, Path(log_path), None, None

    def start(self, timeout=60):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([str(VENV_BIN / "celery"), "-A", "portal", "worker", "--concurrency", "1",
                                      "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
                                      "--without-heartbeat"], cwd=ROOT, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # ready: its pool process is up
            if self.proc.poll() is not None:
                raise RuntimeError(f"the celery worker exited with {self.proc.returncode}; see {self.log_path}")
            if self._processes()[1:]:
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the celery worker did not start within {timeout}s; see {self.log_path}")

    def _processes(self):
        import psutil

        with contextlib.suppress(psutil.Error):
            main = psutil.Process(self.proc.pid)
            return [main, *main.children(recursive=True)]
        return []

    def cpu_seconds(self):
        import psutil

        total = 0.0
        for proc in self._processes():
            with contextlib.suppress(psutil.Error):
                cpu = proc.cpu_times()
                total += cpu.user + cpu.system
        return total

    def stop(self):
        if self.proc is None:
            return
        processes = self._processes()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        for proc in processes:
            with contextlib.suppress(Exception):
                proc.kill()
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None


def outbox_backlog(url, since):
    """(pending, failed) outbox messages created since `since` (a datetime) in the bench database."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FILTER (WHERE done_at IS NULL AND failed_at IS NULL), "
                            "count(*) FILTER (WHERE failed_at IS NOT NULL) FROM portal_outboxmessage "
                            "WHERE created_at >= %s", [since]).fetchone()


def outbox_drained(url, since, *, timeout):
    """Wait until every outbox message created since `since` is done or failed: (seconds waited, pending, failed)."""
    started = time.monotonic()
    while True:
        pending, failed = outbox_backlog(url, since)
        waited = time.monotonic() - started
        if pending == 0 or waited >= timeout:
            return round(waited, 2), pending, failed
        time.sleep(0.1)


def _peak_rss_mb(pid):
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


class CpuMeter:
    """CPU seconds spent during a measurement: the whole machine, this client, the web workers, the
    bench database's PostgreSQL backends, and everyone else (other people's work on a shared machine)."""

    def __init__(self, server, database):
        self.server, self.database = server, database

    def _backends(self):
        import psutil

        found = {}
        for proc in psutil.process_iter(["name", "cmdline"]):
            with contextlib.suppress(psutil.Error):
                title = " ".join(proc.info["cmdline"] or []) + " "  # "postgres: postgres portal_bench [local] idle"
                if (proc.info["name"] or "").startswith("postgres") and f" {self.database} " in title:
                    cpu = proc.cpu_times()
                    found[proc.pid] = cpu.user + cpu.system
        return found

    def _snapshot(self):
        import psutil

        total = psutil.cpu_times()
        busy = sum(total) - total.idle - getattr(total, "iowait", 0.0)
        return {"busy": busy, "client": time.process_time(), "workers": self.server.cpu_seconds(), "pg": self._backends(),
                "at": time.perf_counter()}

    def __enter__(self):
        self.start = self._snapshot()
        self.result = {}
        return self

    def __exit__(self, *exc):
        end, start = self._snapshot(), self.start
        wall = end["at"] - start["at"]
        pg = sum(cpu - start["pg"].get(pid, 0.0) for pid, cpu in end["pg"].items())
        used = {"client": end["client"] - start["client"], "workers": end["workers"] - start["workers"], "postgres": pg}
        busy = end["busy"] - start["busy"]
        cores = os.cpu_count() or 1
        self.result = {f"cpu_{k}_s": round(v, 2) for k, v in used.items()}
        self.result["cpu_others_s"] = round(max(busy - sum(used.values()), 0.0), 2)
        self.result["machine_busy_pct"] = round(100 * busy / (wall * cores), 1) if wall else None
        self.result["others_busy_pct"] = round(100 * self.result["cpu_others_s"] / (wall * cores), 1) if wall else None
        return False


def api_credentials(env, email):
    out = manage(env, "create_api_client", "--email", email, "--admin")
    return json.loads(out.strip().splitlines()[-1])
