"""Who holds the embedded servers, and the entry points that start, adopt, release and stop them.

Every change happens under an ``fcntl`` lock on ``$PORTAL_HOME/.lock``, so concurrent processes are safe.  A
process that called :func:`ensure_embedded_services` is a *holder* (recorded in ``holders.json`` with its start
time, so a reused pid is not mistaken for it); the servers stop when the last live holder releases them, unless
the command line *pinned* them.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from portal.embedded.addresses import (
    celery_broker_url,
    database_url,
    embedded_database_url,
    embedded_redis_url,
    portal_home,
    redis_url,
)
from portal.embedded.home import EmbeddedServiceError, HomeLayout, read_json, write_json
from portal.embedded.postgres import ensure_database, ensure_postgres, postmaster_pid, stop_postgres
from portal.embedded.processes import live_process
from portal.embedded.redis import ensure_redis, serving_pid, stop_redis

logger = logging.getLogger("portal.embedded")

LOCK_TIMEOUT = 180.0  # a cold start (initdb) holds the lock for a few seconds

# PORTAL_HOME -> pid that registered it (a forked child must not release).
_held: dict[Path, int] = {}
_atexit_registered = False


@contextlib.contextmanager
def _locked(paths: HomeLayout) -> Iterator[None]:
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


def _create_time(pid: int) -> float | None:
    proc = live_process(pid)
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


def _read_state(paths: HomeLayout) -> dict[str, Any]:
    state = read_json(paths.state, {})
    if not isinstance(state, dict):
        state = {}
    holders = [h for h in state.get("holders", []) if isinstance(h, dict)]
    return {"pinned": bool(state.get("pinned", False)), "holders": holders}


def snapshot(paths: HomeLayout) -> dict[str, Any]:
    """Current state of both servers (never starts anything)."""
    state = _read_state(paths)
    pg_pid = postmaster_pid(paths) if paths.pgdata.exists() else None
    redis_pid = serving_pid(paths)
    redis_address = redis_url(paths.home)
    return {
        "portal_home": str(paths.home),
        "postgres": {
            "running": pg_pid is not None,
            "pid": pg_pid,
            "url": database_url(paths.home),
            "socket_dir": str(paths.socket_dir),
            "pgdata": str(paths.pgdata),
            "log": str(paths.pg_log),
        },
        "redis": {
            "running": redis_pid is not None,
            "pid": redis_pid,
            "url": redis_address,
            "celery_broker_url": celery_broker_url(redis_address),
            "socket": str(paths.redis_socket),
            "log": str(paths.redis_log),
        },
        "holders": [h["pid"] for h in state["holders"] if _holder_alive(h)],
        "pinned": state["pinned"],
    }


def _record(paths: HomeLayout) -> dict[str, Any]:
    snap = snapshot(paths)
    snap["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_json(paths.services, snap)
    return snap


def is_external(var: str, embedded_url: str, *, cli: bool) -> bool:
    """Whether the environment points ``var`` at a server of its own instead of the embedded one."""
    value = os.environ.get(var)
    if value is None:
        return False
    # On the command line a variable holding our own address (exported from a
    # previous `env`) does not mean "use something else".
    return not (cli and value in (embedded_url, celery_broker_url(embedded_url)))


def ensure(*, register: bool, pin: bool = False, cli: bool = False) -> dict[str, str]:
    """Start or adopt what the environment does not point elsewhere; hold it (register) or pin it."""
    want_pg = not is_external("DATABASE_URL", embedded_database_url(), cli=cli)
    want_redis = not is_external("REDIS_URL", embedded_redis_url(), cli=cli)
    if not (want_pg or want_redis):
        return {}
    paths = HomeLayout(portal_home())
    result: dict[str, str] = {}
    with _locked(paths):
        state = _read_state(paths)
        state["holders"] = [h for h in state["holders"] if _holder_alive(h)]
        started: list[str] = []
        try:
            if want_pg:
                _, fresh = ensure_postgres(paths)
                if fresh:
                    started.append("postgres")
                ensure_database(paths)
                result["DATABASE_URL"] = embedded_database_url()
            if want_redis:
                _, fresh = ensure_redis(paths)
                if fresh:
                    started.append("redis")
                result["REDIS_URL"] = embedded_redis_url()
        except BaseException:
            # Do not leave behind what we just started if nobody will hold it.
            if not state["holders"] and not state["pinned"]:
                for name in started:
                    with contextlib.suppress(Exception):
                        (stop_postgres if name == "postgres" else stop_redis)(paths)
            raise
        if register:
            me = os.getpid()
            state["holders"] = [h for h in state["holders"] if h.get("pid") != me]
            state["holders"].append({"pid": me, "create_time": _create_time(me)})
        if pin:
            state["pinned"] = True
        write_json(paths.state, state)
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
    return ensure(register=True)


def _release(home: Path) -> None:
    paths = HomeLayout(home)
    if not paths.home.is_dir():
        return
    with _locked(paths):
        state = _read_state(paths)
        me = os.getpid()
        state["holders"] = [
            h for h in state["holders"] if h.get("pid") != me and _holder_alive(h)
        ]
        write_json(paths.state, state)
        if state["holders"] or state["pinned"]:
            logger.debug("embedded services still held by %s", state)
            return
        stop_postgres(paths)
        stop_redis(paths)
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
    paths = HomeLayout(portal_home())
    _held.pop(paths.home, None)
    if not paths.home.is_dir():
        return
    with _locked(paths):
        stop_postgres(paths)
        stop_redis(paths)
        write_json(paths.state, {"pinned": False, "holders": []})
        _record(paths)
