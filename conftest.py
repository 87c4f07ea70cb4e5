"""Test session set-up: the embedded services (when no DATABASE_URL/REDIS_URL is set) start before
the test database is created and are released when the session ends."""
import os

import pytest

from portal.embedded import ensure_embedded_services


def pytest_configure(config):
    os.environ.setdefault("OUTBOUND_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
    ensure_embedded_services()
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed: tests only


@pytest.fixture(autouse=True)
def _isolated_cache(settings):
    """Rate-limit counters and caches must not leak between tests."""
    from django.core.cache import cache

    cache.clear()
    yield
