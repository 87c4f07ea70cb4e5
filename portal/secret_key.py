"""SECRET_KEY, which signs sessions and API access tokens and derives the key that encrypts stored secrets.

There is no predictable fallback. `SECRET_KEY` from the environment wins. Without it, a portal on the embedded
PostgreSQL (a demo or a development checkout) gets a random key of its own, made on first start and kept in
`$PORTAL_HOME/secret_key`; a portal on an external `DATABASE_URL` refuses to start, since its key must be the
same on every web server and worker and survive a new container.
"""
import os
import secrets
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from portal.embedded.addresses import embedded_database_url, portal_home

KEY_FILE = "secret_key"
HOW_TO_MAKE_ONE = "python -c 'import secrets; print(secrets.token_urlsafe(50))'"


def secret_key() -> str:
    """The configured key, else this PORTAL_HOME's own (embedded PostgreSQL only)."""
    key = os.environ.get("SECRET_KEY", "")
    if key.strip():
        return key  # as given: the key of existing sessions, tokens and stored secrets
    database_url = os.environ.get("DATABASE_URL")
    # The embedded database's own URL (exported by `python -m portal.embedded env`, or passed to the demo's
    # web, worker and beat) is still the embedded setup.
    if database_url and database_url != embedded_database_url():
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. A portal on an external DATABASE_URL needs a secret key of its own, the same for "
            f"every web server and worker: make one with {HOW_TO_MAKE_ONE} and set SECRET_KEY to it.")
    return _home_secret_key(portal_home())


def _home_secret_key(home: Path) -> str:
    """The key kept in `home`, made on first use. Safe when several processes start at once (the demo's web,
    worker and beat): each writes a whole candidate aside and hard-links it into place, which only the first
    link succeeds at, so everyone reads the same complete key."""
    path = home / KEY_FILE
    try:
        if not path.exists():
            _create(path)
        key = path.read_text().strip()
    except OSError as exc:
        raise ImproperlyConfigured(f"SECRET_KEY is not set and {path} cannot be made or read ({exc}); "
                                   f"set SECRET_KEY (make one with {HOW_TO_MAKE_ONE}).") from exc
    if not key:
        raise ImproperlyConfigured(f"{path} is empty: delete it to make a new key, or set SECRET_KEY.")
    return key


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, candidate = tempfile.mkstemp(dir=path.parent, prefix=f".{KEY_FILE}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(candidate, path)
        except FileExistsError:
            pass  # another process was first: its key is the key
    finally:
        os.unlink(candidate)
