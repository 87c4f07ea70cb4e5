"""No predictable SECRET_KEY (portal/secret_key.py): the embedded setup makes a random key per PORTAL_HOME and keeps
it; an external DATABASE_URL without SECRET_KEY refuses to start; a token signed with the old derived key is
refused. Settings are loaded in fresh processes, as the portal's own processes load them."""
import os
import stat
import subprocess
import sys
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import ApiClientFactory, UserFactory

PRINT_KEY = "import portal.settings as s; print(s.SECRET_KEY)"


def portal_env(home, **extra):
    """The environment of a portal with nothing configured (the test session's own key and URLs removed)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    return {**env, "PORTAL_HOME": str(home), **extra}


def start_python(code, env):
    return subprocess.Popen([sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process):
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out.strip()


def run_python(code, env):
    return finished(start_python(code, env))


def test_the_embedded_setup_makes_a_random_key_per_home_and_keeps_it(tmp_path):
    first_home, second_home = tmp_path / "a", tmp_path / "b"
    key = run_python(PRINT_KEY, portal_env(first_home))
    assert len(key) >= 50 and key != "insecure-dev-key-change-me-" + str(first_home)
    assert (first_home / "secret_key").read_text().strip() == key
    assert stat.S_IMODE((first_home / "secret_key").stat().st_mode) == 0o600
    assert run_python(PRINT_KEY, portal_env(first_home)) == key  # a restart reads the same key
    assert run_python(PRINT_KEY, portal_env(second_home)) not in ("", key)


def test_processes_starting_together_read_one_key(tmp_path):
    """The demo starts web, worker and beat at once on a fresh home: one key for all, no leftovers."""
    home = tmp_path / "home"
    processes = [start_python(PRINT_KEY, portal_env(home)) for _ in range(6)]
    keys = {finished(process) for process in processes}
    assert keys == {(home / "secret_key").read_text().strip()}
    assert sorted(path.name for path in home.iterdir()) == ["secret_key"]


def test_the_embedded_database_url_is_still_the_embedded_setup(tmp_path):
    """`python -m portal.embedded env` exports the embedded DATABASE_URL: the home's key still applies."""
    home = tmp_path / "home"
    url = run_python("from portal.embedded.addresses import embedded_database_url; print(embedded_database_url())", portal_env(home))
    key = run_python(PRINT_KEY, portal_env(home, DATABASE_URL=url))
    assert key == (home / "secret_key").read_text().strip()


def test_an_external_database_without_secret_key_refuses_to_start(tmp_path):
    home = tmp_path / "home"
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=settings.BASE_DIR, capture_output=True, text=True,
                            env=portal_env(home, DATABASE_URL="postgresql://portal@db.invalid:5432/portal"), timeout=120)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set" in result.stderr
    assert "secrets.token_urlsafe(50)" in result.stderr  # how to make one
    assert not (home / "secret_key").exists()

    configured = subprocess.run([sys.executable, "manage.py", "check"], cwd=settings.BASE_DIR, capture_output=True,
                                text=True, timeout=120, env=portal_env(home, SECRET_KEY="k" * 60,
                                                                       DATABASE_URL="postgresql://portal@db.invalid/portal"))
    assert configured.returncode == 0, configured.stderr


@pytest.mark.django_db
def test_a_token_signed_with_the_old_predictable_key_is_refused(tmp_path, settings):
    """The key a portal with nothing configured chooses does not verify a token forged from its PORTAL_HOME."""
    home = tmp_path / "home"
    settings.SECRET_KEY = run_python(PRINT_KEY, portal_env(home))
    admin = UserFactory(email="root@example.com", admin=True)
    client = ApiClientFactory(user=admin)
    now = timezone.now()
    claims = {"sub": str(admin.pk), "email": admin.email, "clientId": client.client_id, "isMachine": True,
              "iat": int(now.timestamp()), "exp": int((now + timedelta(hours=1)).timestamp())}
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Bearer " + jwt.encode(claims, settings.SECRET_KEY, algorithm="HS256"))
    assert api.get("/v1/blueprints").status_code == 200  # the claims are those of a real token

    forged = jwt.encode(claims, "insecure-dev-key-change-me-" + str(home), algorithm="HS256")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
    response = api.get("/v1/blueprints")
    assert response.status_code == 401
    assert response.json()["message"] == "Access token is invalid."
