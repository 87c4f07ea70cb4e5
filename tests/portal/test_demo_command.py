import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

from actions.choices import RunStatus
from actions.models import Run
from catalog.models import Blueprint, Entity
from web.management.commands.demo import serve_environment
from portal.models import ApiClient
from tests.factories import UserFactory
from tests.support.api import api_for

pytestmark = pytest.mark.django_db


def test_demo_sets_up_catalog_users_and_client(tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "PORTAL_HOME", tmp_path)
    out = StringIO()
    call_command("demo", "--no-serve", stdout=out)
    text = out.getvalue()
    assert Blueprint.objects.count() == 11  # seed + starter
    counts = {identifier: Entity.objects.filter(blueprint__identifier=identifier).count()
              for identifier in ("Component", "environment", "runningService", "deployment", "devEnvironment")}
    assert counts["Component"] == 4 and counts["environment"] == 3 and counts["devEnvironment"] == 2
    assert counts["runningService"] == 6 and counts["deployment"] > 30  # a month of demo history
    assert "Starter actions: 16 added" in text
    for email in ("admin@portal.local", "developer@portal.local", "manager@portal.local"):
        assert email in text
        assert get_user_model().objects.get(email=email).check_password(email.split("@")[0])
    credentials = json.loads(text.split("Admin API client: ")[1].splitlines()[0])
    assert ApiClient.objects.filter(client_id=credentials["clientId"]).exists()
    # A second start reuses the data and prints the same client.
    again = StringIO()
    call_command("demo", "--no-serve", stdout=again)
    assert credentials["clientId"] in again.getvalue()
    assert ApiClient.objects.count() == 1 and Blueprint.objects.count() == 11
    assert Entity.objects.filter(blueprint__identifier="deployment").count() == counts["deployment"]


def test_importing_settings_starts_nothing(tmp_path):
    """`manage.py check` with nothing configured must not start servers (settings are pure)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["PORTAL_HOME"] = str(tmp_path / "home")
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=settings.BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "home" / "pgdata").exists()


def test_the_demo_serves_with_its_own_key_and_no_loopback_allowance(monkeypatch):
    for name in ("OUTBOUND_ALLOWED_NETWORKS", "PORTAL_BASE_URL", "PORTAL_DEMO_RECEIVER"):
        monkeypatch.delenv(name, raising=False)
    env = serve_environment(8123)
    assert "OUTBOUND_ALLOWED_NETWORKS" not in env  # webhooks reach the demo receiver only (portal/outbound.py)
    assert (env["PORTAL_BASE_URL"], env["PORTAL_DEMO_RECEIVER"]) == ("http://127.0.0.1:8123", "1")
    assert env["SECRET_KEY"] == settings.SECRET_KEY  # web, worker and beat sign and decrypt alike
    monkeypatch.setenv("OUTBOUND_ALLOWED_NETWORKS", "127.0.0.0/8")  # the user's choice is kept
    assert serve_environment(8123)["OUTBOUND_ALLOWED_NETWORKS"] == "127.0.0.0/8"


@pytest.fixture
def demo_portal(live_server, settings):
    """live_server configured as `make demo` configures its web and worker (serve_environment): starter actions,
    the demo receiver on, no loopback allowance; runs done in-process."""
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    settings.PORTAL_BASE_URL = live_server.url
    settings.DEMO_RECEIVER_ENABLED = True
    settings.DEMO_RECEIVER_DELAY_SECONDS = 0
    settings.CELERY_TASK_ALWAYS_EAGER = True
    call_command("load_starter", stdout=StringIO())
    return live_server


@pytest.mark.django_db(transaction=True)
def test_in_the_demo_starter_webhooks_reach_the_demo_receiver_and_user_webhooks_no_loopback(demo_portal, httpserver):
    developer = api_for(UserFactory(email="dev@example.com", teams=["Checkout"]))
    answer = developer.post("/v1/actions/create_dev_env/runs", {"properties": {"branch": "feature-a"}}, format="json")
    assert answer.status_code == 202, answer.json()
    run = Run.objects.get(pk=answer.json()["run"]["id"])
    assert run.status == RunStatus.SUCCESS, run.status_label
    assert Entity.objects.filter(blueprint__identifier="devEnvironment", identifier="feature-a-dev").exists()

    httpserver.expect_request("/hook").respond_with_data("reached")
    admin = api_for(UserFactory(email="admin@example.com", admin=True))
    for identifier, url in (("notify_local", httpserver.url_for("/hook")), ("call_portal_api", f"{demo_portal.url}/v1/blueprints")):
        created = admin.post("/v1/actions", {
            "identifier": identifier, "title": identifier,
            "trigger": {"type": "self-service", "operation": "CREATE", "blueprintIdentifier": "devEnvironment",
                        "userInputs": {"properties": {}, "required": []}},
            "invocationMethod": {"type": "WEBHOOK", "url": url}}, format="json")
        assert created.status_code == 201, created.json()
        answer = admin.post(f"/v1/actions/{identifier}/runs", {"properties": {}}, format="json")
        assert answer.status_code == 202, answer.json()
        run = Run.objects.get(pk=answer.json()["run"]["id"])
        assert run.status == RunStatus.FAILURE and "loopback" in run.status_label, run.status_label
        assert run.status_label.startswith("Webhook not sent: ")
    assert httpserver.log == []
