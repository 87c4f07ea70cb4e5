"""Where the embedded servers of a ``$PORTAL_HOME`` listen, computed without touching anything.

Settings import this module at start, so it imports nothing of the servers' life cycles: every function here is
pure, derived from ``PORTAL_HOME`` alone, and never starts, stops or even looks at a server.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import quote

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent

DATABASE_NAME = "portal"
PG_SUPERUSER = "postgres"
PG_PORT = 5432
PG_SOCKET_NAME = f".s.PGSQL.{PG_PORT}"
REDIS_SOCKET_NAME = "redis.sock"
# sun_path is 108 bytes on Linux and 104 on macOS, including the NUL.
MAX_SOCKET_PATH_BYTES = 100
SHORT_SOCKET_ROOT = Path("/tmp")  # deliberately not $TMPDIR: must be deterministic


def portal_home() -> Path:
    """Absolute ``$PORTAL_HOME``; a relative value is taken relative to the cwd."""
    raw = os.environ.get("PORTAL_HOME")
    if raw:
        return Path(raw).expanduser().resolve()
    return (PROJECT_ROOT / ".portal").resolve()


def socket_dir(home: Path) -> Path:
    """``home/run``, or ``/tmp/portal-<sha256(home)[:12]>`` when that path is too long for a socket address."""
    run = home / "run"
    if len(os.fsencode(run / PG_SOCKET_NAME)) <= MAX_SOCKET_PATH_BYTES:
        return run
    digest = hashlib.sha256(os.fsencode(home)).hexdigest()[:12]
    return SHORT_SOCKET_ROOT / f"portal-{digest}"


def redis_socket(home: Path) -> Path:
    return socket_dir(home) / REDIS_SOCKET_NAME


def database_url(home: Path) -> str:
    """libpq URL of the PostgreSQL of ``home`` (database ``portal``)."""
    host = quote(str(socket_dir(home)), safe="/")
    return f"postgresql://{PG_SUPERUSER}@/{DATABASE_NAME}?host={host}"


def redis_url(home: Path) -> str:
    """``unix://`` URL of the Redis socket of ``home``."""
    return "unix://" + quote(str(redis_socket(home)), safe="/")


def embedded_database_url() -> str:
    """libpq URL of the embedded PostgreSQL of this ``PORTAL_HOME``.  Starts nothing."""
    return database_url(portal_home())


def embedded_redis_url() -> str:
    """``unix://`` URL of the embedded Redis socket of this ``PORTAL_HOME``.  Starts nothing."""
    return redis_url(portal_home())


def celery_broker_url(url: str) -> str:
    """Kombu spells redis-over-unix-socket ``redis+socket://``; other URLs pass through."""
    if url.startswith("unix://"):
        return "redis+socket://" + url[len("unix://") :]
    return url
