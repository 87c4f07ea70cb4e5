"""A database or Redis that is down: the API answers 503 `unavailable` with Retry-After in our envelope and a
page answers a friendly 503 page, never Django's HTML 500. The database outage is real: the portal runs in
gunicorn with DATABASE_URL naming a port where nothing listens."""
import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "outage-test-key-" + "k" * 32


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def portal_without_database(tmp_path, settings):
    """The portal in gunicorn (DEBUG off, the production config: portal/gunicorn_config.py) whose database is
    unreachable; yields its base URL."""
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "portal.settings", "DEBUG": "0", "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/portal",  # nothing listens there
        "REDIS_URL": settings.REDIS_URL, "PORTAL_HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
    }
    with open(tmp_path / "gunicorn.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "portal.wsgi", "--config", "python:portal.gunicorn_config",
                                 "--bind", f"127.0.0.1:{port}", "--workers", "1", "--log-level", "warning"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def assert_api_unavailable(response):
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Retry-After"] == "30"
    body = response.json()
    assert body["ok"] is False and body["error"] == "unavailable" and "database" in body["message"]


def test_api_and_pages_answer_503_while_the_database_is_down(portal_without_database):
    base = portal_without_database
    assert_api_unavailable(requests.post(f"{base}/v1/auth/access_token", json={"clientId": "ci", "clientSecret": "s"},
                                         timeout=30))
    token = jwt.encode({"sub": "1", "clientId": "ci", "exp": int(time.time()) + 600}, SECRET_KEY, algorithm="HS256")
    headers = {"Authorization": f"Bearer {token}"}
    assert_api_unavailable(requests.get(f"{base}/v1/blueprints", headers=headers, timeout=30))
    assert_api_unavailable(requests.post(f"{base}/v1/blueprints/Component/entities", json={"identifier": "x"},
                                         headers=headers, timeout=30))

    # a signed-in browser: its session is in the database
    page = requests.get(f"{base}/catalog/", cookies={"sessionid": "abcdefgh12345678"}, timeout=30, allow_redirects=False)
    assert page.status_code == 503
    assert page.headers["Content-Type"].startswith("text/html") and page.headers["Retry-After"] == "30"
    assert "<h1>The portal is unavailable</h1>" in page.text and "Try again in a minute." in page.text
    assert 'href="/static/portal/portal.css"' in page.text  # the portal's own look, not a bare error

    health = requests.get(f"{base}/healthz", timeout=30)
    assert health.status_code == 503 and health.json()["database"].startswith("down")


DEAD_REDIS = "redis://127.0.0.1:1/0"  # port 1: nothing listens


def _reset_broker_connections(app):
    app._pool = None  # the next task opens a connection to the broker URL configured now
    app.amqp._producer_pool = None


@pytest.fixture
def redis_down(settings):
    """Redis unreachable for everything that uses it: the rate limiter, the cache and Celery's broker."""
    from portal.celery import app
    from portal.middleware import ApiGuardMiddleware

    settings.REDIS_URL = DEAD_REDIS
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": DEAD_REDIS}}
    settings.CELERY_BROKER_URL = DEAD_REDIS  # the Celery app reads Django's settings
    _reset_broker_connections(app)
    ApiGuardMiddleware._redis = None
    yield
    _reset_broker_connections(app)  # pools are made again on next use, for the URL the settings fixture restores
    ApiGuardMiddleware._redis = None


@pytest.mark.django_db(transaction=True)  # the run's task is queued on commit, as in production
def test_api_and_pages_keep_working_while_redis_is_down(redis_down, client):
    from io import StringIO

    from django.core.management import call_command

    from actions.models import Run
    from tests.factories import UserFactory
    from tests.support.api import api_for

    call_command("load_starter", stdout=StringIO())
    admin = UserFactory(email="root@example.com", admin=True)
    api = api_for(admin)
    api.raise_request_exception = False
    assert api.get("/v1/blueprints").status_code == 200

    # the run and its outbox row are committed together: the request succeeds, and the outbox sweep
    # dispatches the run once the broker is back (failing the request would invite a duplicate run)
    response = api.post("/v1/actions/create_dev_env/runs", {"properties": {"branch": "main"}}, format="json")
    assert response.status_code == 202, response.content
    run = Run.objects.get(pk=response.json()["run"]["id"])
    assert run.status == "IN_PROGRESS" and run.dispatched_at is None

    client.force_login(admin)
    assert client.get("/catalog/").status_code == 200
    assert client.get(f"/runs/{run.id}/").status_code == 200
