"""Test session set-up: the embedded services (when no DATABASE_URL/REDIS_URL is set) start before
the test database is created and are released when the session ends."""
import os

import pytest

from portal.embedded import ensure_embedded_services


def pytest_configure(config):
    ensure_embedded_services()
    from django.conf import settings

    # Test receivers listen on loopback (settings were loaded before this hook, so set it here).
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed: tests only
    # Tests flush their cache; keep it off the database a running demo or worker uses.
    settings.REDIS_URL = redis_url_with_db(settings.REDIS_URL, TEST_REDIS_DB)
    settings.CACHES["default"]["LOCATION"] = settings.REDIS_URL
    # … and so is Celery: what the tests publish (the outbox after a captured commit) lands in the session's db.
    from portal.embedded import celery_broker_url

    settings.CELERY_BROKER_URL = celery_broker_url(settings.REDIS_URL)


TEST_REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "9"))  # parallel local sessions: give each its own


def redis_url_with_db(url, db):
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = dict(parse_qsl(parts.query), db=str(db))
        return f"unix://{parts.path}?{urlencode(query)}"  # urlunsplit would drop the empty host
    return urlunsplit(parts._replace(path=f"/{db}"))


@pytest.fixture(autouse=True)
def _isolated_cache(settings):
    """Rate-limit counters and caches must not leak between tests."""
    from django.core.cache import cache

    cache.clear()
    yield
