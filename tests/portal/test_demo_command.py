import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

from catalog.models import Blueprint, Entity
from portal.models import ApiClient

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
