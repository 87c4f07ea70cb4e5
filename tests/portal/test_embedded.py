"""Tests for portal.embedded: embedded PostgreSQL/Redis lifecycle.

Plain pytest, no Django database:

    .venv/bin/python -m pytest tests/portal/test_embedded.py -p no:django -q

Tests that start real servers can be skipped with PORTAL_SKIP_EMBEDDED_TESTS=1
(or ``-k "not test_embedded"``).  Every test gets its own temporary
PORTAL_HOME and stops whatever it started, with a process sweep as a safety
net, so no server outlives the session.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("fcntl")
psutil = pytest.importorskip("psutil")

from portal import embedded  # noqa: E402

PROJECT_ROOT = Path(embedded.__file__).resolve().parent.parent

servers = pytest.mark.skipif(
    os.environ.get("PORTAL_SKIP_EMBEDDED_TESTS") == "1",
    reason="PORTAL_SKIP_EMBEDDED_TESTS=1",
)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def _paths() -> embedded._Paths:
    return embedded._Paths(embedded.portal_home())


def _pids() -> tuple[int | None, int | None]:
    snap = embedded._snapshot(_paths())
    return snap["postgres"]["pid"], snap["redis"]["pid"]


def _holders(home: Path) -> list[int]:
    state = json.loads((home / "holders.json").read_text())
    return [h["pid"] for h in state["holders"]]


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p
    )
    env.update(extra)
    return env


def _python(code: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env=_child_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "portal.embedded", *args],
        cwd=PROJECT_ROOT,
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _query(url: str, sql: str):
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        cur = conn.execute(sql)
        return cur.fetchone() if cur.description else None


def _ping(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        return client.ping()
    finally:
        client.close()


def _sweep(*dirs: Path) -> None:
    """Safety net: kill any process still working in one of dirs."""
    roots = [str(d) for d in dirs]
    for proc in psutil.process_iter(["pid"]):
        try:
            cwd = proc.cwd()
        except psutil.Error:
            continue
        if any(cwd == r or cwd.startswith(r + os.sep) for r in roots):
            try:
                proc.kill()
            except psutil.Error:
                pass


def _scratch_root() -> str:
    """tmpfs when there is room (fsync is free there: tests stay fast), else /tmp."""
    shm = "/dev/shm"
    try:
        st = os.statvfs(shm)
        if st.f_bavail * st.f_frsize > 1 << 30 and os.access(shm, os.W_OK):
            return shm
    except OSError:
        pass
    return "/tmp"


def _new_home(monkeypatch) -> Path:
    path = Path(tempfile.mkdtemp(prefix="portal-emb-", dir=_scratch_root()))
    monkeypatch.setenv("PORTAL_HOME", str(path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return path


def _seed(home: Path, template: Path) -> None:
    """Copy an initialised (stopped) cluster: initdb is the slow part of a cold start."""
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(template), str(home / "pgdata")], check=True)


@pytest.fixture(scope="module")
def pgdata_template():
    """A cluster initialised once per module through the public API (cold start)."""
    with pytest.MonkeyPatch.context() as mp:
        path = _new_home(mp)
        try:
            embedded.ensure_embedded_services()
            embedded.stop_embedded_services()
            yield path / "pgdata"
        finally:
            _stop_and_clean(path)


@pytest.fixture
def fresh_home(monkeypatch):
    """A fresh, empty temporary PORTAL_HOME, with no DATABASE_URL/REDIS_URL."""
    path = _new_home(monkeypatch)
    try:
        yield path
    finally:
        _stop_and_clean(path)


@pytest.fixture
def home(fresh_home, pgdata_template):
    """Like fresh_home, with an already initialised cluster in it."""
    _seed(fresh_home, pgdata_template)
    return fresh_home


def _stop_and_clean(path: Path) -> None:
    socket_dir = embedded._socket_dir(embedded.portal_home())
    try:
        embedded.stop_embedded_services()
    finally:
        _sweep(path)
        if socket_dir != path / "run":
            shutil.rmtree(socket_dir, ignore_errors=True)
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------
# pure functions
# --------------------------------------------------------------------------


def test_urls_are_deterministic_and_start_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PORTAL_HOME", "rel/home")
    home = (tmp_path / "rel" / "home").resolve()

    assert embedded.portal_home() == home
    db_url = embedded.embedded_database_url()
    redis_url = embedded.embedded_redis_url()
    assert db_url == f"postgresql://postgres@/portal?host={home}/run"
    assert redis_url == f"unix://{home}/run/redis.sock"
    assert embedded.embedded_database_url() == db_url
    assert embedded.embedded_redis_url() == redis_url
    assert not (tmp_path / "rel").exists()  # nothing created, nothing started

    monkeypatch.delenv("PORTAL_HOME")
    assert embedded.portal_home() == PROJECT_ROOT / ".portal"

    assert embedded.celery_broker_url("unix:///a/b/redis.sock") == "redis+socket:///a/b/redis.sock"
    assert embedded.celery_broker_url("unix:///a/r.sock?db=2") == "redis+socket:///a/r.sock?db=2"
    assert embedded.celery_broker_url("redis://h:6379/0") == "redis://h:6379/0"


def test_urls_are_understood_by_clients(monkeypatch):
    monkeypatch.setenv("PORTAL_HOME", "/srv/My Portal")
    db_url = embedded.embedded_database_url()
    assert db_url == "postgresql://postgres@/portal?host=/srv/My%20Portal/run"

    from psycopg.conninfo import conninfo_to_dict

    assert conninfo_to_dict(db_url) == {
        "user": "postgres",
        "dbname": "portal",
        "host": "/srv/My Portal/run",
    }
    dj_database_url = pytest.importorskip("dj_database_url")
    parsed = dj_database_url.parse(db_url)
    assert parsed["NAME"] == "portal"
    assert parsed["USER"] == "postgres"
    assert parsed["OPTIONS"]["host"] == "/srv/My Portal/run"

    from redis.connection import parse_url

    assert parse_url(embedded.embedded_redis_url())["path"] == "/srv/My Portal/run/redis.sock"


def test_long_portal_home_falls_back_to_short_socket_dir(monkeypatch):
    long_home = "/tmp/" + "/".join(["a-rather-long-directory-name"] * 4)
    monkeypatch.setenv("PORTAL_HOME", long_home)
    digest = hashlib.sha256(long_home.encode()).hexdigest()[:12]
    assert embedded._socket_dir(Path(long_home)) == Path(f"/tmp/portal-{digest}")
    assert embedded.embedded_database_url().endswith(f"?host=/tmp/portal-{digest}")
    assert embedded.embedded_redis_url() == f"unix:///tmp/portal-{digest}/redis.sock"


# --------------------------------------------------------------------------
# servers
# --------------------------------------------------------------------------


@servers
def test_ensure_starts_both_and_is_idempotent(fresh_home):
    home = fresh_home
    env = embedded.ensure_embedded_services()

    assert env == {
        "DATABASE_URL": embedded.embedded_database_url(),
        "REDIS_URL": embedded.embedded_redis_url(),
    }
    assert _query(env["DATABASE_URL"], "SELECT current_database()") == ("portal",)
    _query(env["DATABASE_URL"], "CREATE EXTENSION IF NOT EXISTS pg_trgm")
    (similarity,) = _query(env["DATABASE_URL"], "SELECT similarity('catalog', 'catalogue')")
    assert similarity > 0.4
    assert _ping(env["REDIS_URL"])
    # Only unix sockets: nothing listens on TCP.
    assert _query(env["DATABASE_URL"], "SHOW listen_addresses") == ("",)

    services = json.loads((home / "services.json").read_text())
    pg_pid, redis_pid = _pids()
    assert services["postgres"]["pid"] == pg_pid and pg_pid
    assert services["redis"]["pid"] == redis_pid and redis_pid
    assert services["postgres"]["url"] == env["DATABASE_URL"]
    assert services["redis"]["celery_broker_url"].startswith("redis+socket:///")
    assert _holders(home) == [os.getpid()]

    assert embedded.ensure_embedded_services() == env  # second call: reuse
    assert _pids() == (pg_pid, redis_pid)
    assert _holders(home) == [os.getpid()]


@servers
def test_set_env_vars_are_not_embedded(fresh_home, monkeypatch):
    home = fresh_home
    monkeypatch.setenv("DATABASE_URL", "postgresql://someone@db.example/portal")
    env = embedded.ensure_embedded_services()
    assert env == {"REDIS_URL": embedded.embedded_redis_url()}
    assert not (home / "pgdata").exists()
    assert _ping(env["REDIS_URL"])

    monkeypatch.setenv("REDIS_URL", "redis://cache.example:6379/0")
    assert embedded.ensure_embedded_services() == {}


@servers
def test_redis_keeps_queued_messages_across_a_restart(fresh_home, monkeypatch):
    """The embedded Redis writes an append-only file: a queued task outlives a restart of Redis (or the demo)."""
    from kombu import Connection

    monkeypatch.setenv("DATABASE_URL", "postgresql://someone@db.example/portal")  # Redis only
    broker = embedded.celery_broker_url(embedded.ensure_embedded_services()["REDIS_URL"])
    with Connection(broker) as conn, conn.SimpleQueue("celery") as queue:
        queue.put({"task": "actions.tasks.run_dispatch_task", "args": [42]})
    _, redis_pid = _pids()

    embedded.stop_embedded_services()
    assert _wait_dead(redis_pid)
    embedded.ensure_embedded_services()
    assert _pids()[1] not in (None, redis_pid)

    with Connection(broker) as conn, conn.SimpleQueue("celery") as queue:
        message = queue.get(timeout=5)
        message.ack()
    assert message.payload == {"task": "actions.tasks.run_dispatch_task", "args": [42]}
    assert (fresh_home / "redis" / "appendonly.aof").stat().st_size > 0


@servers
def test_other_processes_reuse_servers_and_last_holder_stops_them(home):
    env = embedded.ensure_embedded_services()
    pg_pid, redis_pid = _pids()

    code = (
        "import json, os\n"
        "from portal import embedded\n"
        "env = embedded.ensure_embedded_services()\n"
        "snap = embedded._snapshot(embedded._Paths(embedded.portal_home()))\n"
        "print(json.dumps({'env': env, 'pg': snap['postgres']['pid'],"
        " 'redis': snap['redis']['pid'], 'holders': snap['holders'], 'me': os.getpid()}))\n"
        "embedded.release_embedded_services()\n"
    )
    # Two at once, to exercise the lock as well.
    children = [_python(code), _python(code)]
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        seen = json.loads(out)
        assert seen["env"] == env
        assert (seen["pg"], seen["redis"]) == (pg_pid, redis_pid)
        assert os.getpid() in seen["holders"] and seen["me"] in seen["holders"]

    # The children released, but we still hold: nothing was stopped.
    assert _alive(pg_pid) and _alive(redis_pid)
    assert _pids() == (pg_pid, redis_pid)
    assert _holders(home) == [os.getpid()]
    assert _query(env["DATABASE_URL"], "SELECT 1") == (1,)
    assert _ping(env["REDIS_URL"])

    # A child handed the URLs does not register at all.
    child = _python(
        "from portal import embedded\n"
        "assert embedded.ensure_embedded_services() == {}\n"
        "embedded.release_embedded_services()\n",
        **env,
    )
    _, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert _alive(pg_pid) and _alive(redis_pid)

    # The last holder releases: both servers stop.
    embedded.release_embedded_services()
    assert _wait_dead(pg_pid) and _wait_dead(redis_pid)
    assert not (home / "pgdata" / "postmaster.pid").exists()
    assert not (home / "run" / "redis.sock").exists()
    assert _holders(home) == []


@servers
def test_servers_of_a_dead_holder_are_adopted_then_stopped(home):
    child = _python(
        "import os, signal\n"
        "from portal import embedded\n"
        "embedded.ensure_embedded_services()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL
    pg_pid, redis_pid = _pids()
    assert _alive(pg_pid) and _alive(redis_pid)  # orphaned, holder is dead

    embedded.ensure_embedded_services()
    assert _pids() == (pg_pid, redis_pid)  # adopted, not restarted
    assert _holders(home) == [os.getpid()]  # dead holder pruned

    embedded.release_embedded_services()
    assert _wait_dead(pg_pid) and _wait_dead(redis_pid)


@servers
def test_restart_after_kill_9_with_stale_files(home):
    embedded.ensure_embedded_services()
    pg_pid, redis_pid = _pids()
    os.kill(pg_pid, signal.SIGKILL)
    os.kill(redis_pid, signal.SIGKILL)
    assert _wait_dead(pg_pid) and _wait_dead(redis_pid)
    # kill -9 leaves the pid files and sockets behind
    assert (home / "pgdata" / "postmaster.pid").exists()
    assert (home / "redis" / "redis.pid").exists()
    assert (home / "run" / "redis.sock").exists()
    assert _pids() == (None, None)

    env = embedded.ensure_embedded_services()
    new_pg, new_redis = _pids()
    assert new_pg and new_redis and (new_pg, new_redis) != (pg_pid, redis_pid)
    assert _query(env["DATABASE_URL"], "SELECT 1") == (1,)
    assert _ping(env["REDIS_URL"])


@servers
def test_long_portal_home_servers_use_short_socket_dir(home, monkeypatch, pgdata_template):
    long_home = home / ("long-" + "x" * 100)
    _seed(long_home, pgdata_template)
    monkeypatch.setenv("PORTAL_HOME", str(long_home))
    socket_dir = embedded._socket_dir(long_home)
    assert str(socket_dir).startswith("/tmp/portal-")
    try:
        env = embedded.ensure_embedded_services()
        assert (socket_dir / ".s.PGSQL.5432").is_socket()
        assert (socket_dir / "redis.sock").is_socket()
        assert _query(env["DATABASE_URL"], "SELECT 1") == (1,)
        assert _ping(env["REDIS_URL"])
        pg_pid, redis_pid = _pids()
        embedded.release_embedded_services()
        assert _wait_dead(pg_pid) and _wait_dead(redis_pid)
    finally:
        _stop_and_clean(long_home)


@servers
def test_cli_start_is_pinned_until_stop(home):
    started = _cli("start")
    assert started.returncode == 0, started.stderr
    assert f"DATABASE_URL={embedded.embedded_database_url()}" in started.stdout
    pg_pid, redis_pid = _pids()
    assert _alive(pg_pid) and _alive(redis_pid)  # survived the CLI's exit

    status = _cli("status")
    assert status.returncode == 0
    assert f"postgres: running (pid {pg_pid})" in status.stdout
    assert f"redis: running (pid {redis_pid})" in status.stdout

    env_out = _cli("env")
    assert env_out.returncode == 0, env_out.stderr
    lines = dict(line.split("=", 1) for line in env_out.stdout.splitlines())
    assert lines == {
        "DATABASE_URL": embedded.embedded_database_url(),
        "REDIS_URL": embedded.embedded_redis_url(),
    }

    # A holder comes and goes: pinned servers keep running.
    embedded.ensure_embedded_services()
    assert _pids() == (pg_pid, redis_pid)
    embedded.release_embedded_services()
    assert _alive(pg_pid) and _alive(redis_pid)

    stopped = _cli("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert _wait_dead(pg_pid) and _wait_dead(redis_pid)
    status = _cli("status")
    assert status.returncode == 1
    assert "postgres: stopped" in status.stdout and "redis: stopped" in status.stdout


@servers
def test_start_failure_raises_with_log_tail(home):
    embedded.ensure_embedded_services()
    embedded.stop_embedded_services()
    with open(home / "pgdata" / "postgresql.conf", "a") as conf:
        conf.write("\nportal_bogus_setting_xyz = 1\n")

    with pytest.raises(embedded.EmbeddedServiceError) as excinfo:
        embedded.ensure_embedded_services()
    assert "portal_bogus_setting_xyz" in str(excinfo.value)
    assert _pids() == (None, None)  # nothing half-started left behind


@servers
def test_the_audit_log_walls_stand_on_the_embedded_postgres(home):
    """migrate (audit only: fast) as the embedded superuser creates the app's role and the append-only triggers;
    the portal then connects as that role."""
    url = embedded.ensure_embedded_services()["DATABASE_URL"]
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "audit", "-v0"], cwd=PROJECT_ROOT,
                             env=_child_env(), capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stderr
    app = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c",
         "from django.db import connection\n"
         "cursor = connection.cursor()\n"
         "cursor.execute('SELECT current_user')\n"
         "print(cursor.fetchone()[0])\n"
         "try:\n"
         "    cursor.execute('DELETE FROM audit_auditevent')\n"
         "except Exception as exc:\n"
         "    print(exc)\n"],
        cwd=PROJECT_ROOT, env=_child_env(), capture_output=True, text=True, timeout=120)
    assert app.returncode == 0, app.stderr
    assert app.stdout.splitlines() == ["portal_app", "permission denied for table audit_auditevent"]
    # The owner (the embedded superuser) is refused by the trigger.
    with pytest.raises(Exception, match="the audit log is append-only: UPDATE on audit_auditevent refused"):
        _query(url, "UPDATE audit_auditevent SET message = 'rewritten'")
