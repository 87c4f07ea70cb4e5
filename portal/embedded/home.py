"""The layout of a ``$PORTAL_HOME`` and the small file chores both servers share."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from portal.embedded.addresses import PG_SOCKET_NAME, REDIS_SOCKET_NAME, socket_dir

LOG_ROTATE_BYTES = 10 * 1024 * 1024
LOG_TAIL_LINES = 40


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started (or stopped)."""


class HomeLayout:
    """Paths under one ``$PORTAL_HOME`` (see the package docstring for what each holds)."""

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
        self.socket_dir = socket_dir(home)
        self.pg_socket = self.socket_dir / PG_SOCKET_NAME
        self.redis_socket = self.socket_dir / REDIS_SOCKET_NAME


def prepare_socket_dir(paths: HomeLayout, account) -> None:
    """Create the socket directory, owned by ``account`` (the PostgreSQL server's user when root) or by us."""
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


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(data.splitlines()[-lines:]) or f"(empty log at {path})"


def rotate_log(path: Path) -> None:
    try:
        if path.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass


def unlink_quietly(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
