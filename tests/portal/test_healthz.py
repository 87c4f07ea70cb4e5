import pytest

pytestmark = pytest.mark.django_db


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "database": "ok", "broker": "ok"}


def test_healthz_names_the_broker_when_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # the Celery app reads Django's settings
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False and body["database"] == "ok" and body["broker"].startswith("down")
