"""Production security settings from the environment (portal/settings.py): `check --deploy` finds nothing but the
opt-ins, and behind a TLS-terminating proxy the portal's answers carry HSTS, frame and sniffing protection and
Secure cookies."""
import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

from tests.factories import UserFactory

SECURITY_SETTINGS = ["SECURE_PROXY_SSL_HEADER", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY",
                     "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
                     "SECURE_CONTENT_TYPE_NOSNIFF", "SECURE_REFERRER_POLICY", "X_FRAME_OPTIONS"]
PRODUCTION = {"DEBUG": "false", "SECRET_KEY": "a-production-key-of-fifty-or-more-characters-0123456789",
              "DATABASE_URL": "postgresql://portal@db.invalid:5432/portal", "REDIS_URL": "redis://redis.invalid:6379/0",
              "ALLOWED_HOSTS": "portal.example.com", "PORTAL_BASE_URL": "https://portal.example.com"}
OPT_INS = {"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto,https", "SECURE_SSL_REDIRECT": "true",
           "SECURE_HSTS_SECONDS": "31536000", "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true", "SECURE_HSTS_PRELOAD": "true"}


def production_env(**variables):
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE", *PRODUCTION, *OPT_INS)}
    return {**env, **PRODUCTION, **variables}


def run(args, env):
    return subprocess.run([sys.executable, *args], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True,
                          timeout=120)


def loaded_settings(**variables):
    """The security settings a portal started with this environment has."""
    code = f"import json, portal.settings as s; print(json.dumps({{n: getattr(s, n) for n in {SECURITY_SETTINGS!r}}}))"
    result = run(["-c", code], production_env(**variables))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def deploy_warnings(env):
    result = run(["manage.py", "check", "--deploy"], env)
    assert result.returncode == 0, result.stderr
    return sorted({word.strip("():") for word in result.stderr.split() if word.startswith("(security.")})


def test_check_deploy_reports_only_what_the_operator_opts_into():
    assert deploy_warnings(production_env()) == ["security.W004", "security.W008"]  # HSTS and the HTTPS redirect
    assert deploy_warnings(production_env(**OPT_INS)) == []


def test_cookies_are_secure_when_the_portal_is_served_over_https():
    plain = loaded_settings(PORTAL_BASE_URL="http://127.0.0.1:8000")
    assert (plain["SESSION_COOKIE_SECURE"], plain["CSRF_COOKIE_SECURE"]) == (False, False)  # a demo over plain HTTP
    https = loaded_settings()
    assert (https["SESSION_COOKIE_SECURE"], https["CSRF_COOKIE_SECURE"], https["SESSION_COOKIE_HTTPONLY"]) == (True, True, True)
    assert https["SECURE_PROXY_SSL_HEADER"] is None and https["SECURE_HSTS_SECONDS"] == 0  # opt-in
    assert loaded_settings(SESSION_COOKIE_SECURE="false")["SESSION_COOKIE_SECURE"] is False
    behind_proxy = loaded_settings(PORTAL_BASE_URL="http://portal.internal", SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto,https")
    assert behind_proxy["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert (behind_proxy["SESSION_COOKIE_SECURE"], behind_proxy["CSRF_COOKIE_SECURE"]) == (True, True)
    assert loaded_settings(SESSION_COOKIE_SECURE="")["SESSION_COOKIE_SECURE"] is True  # empty, as in .env.example


def test_a_malformed_proxy_header_setting_refuses_to_start():
    result = run(["manage.py", "check"], production_env(SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO"))
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECURE_PROXY_SSL_HEADER: expected HEADER,VALUE" in result.stderr


@pytest.fixture
def behind_https_proxy(settings):
    """The settings of a production portal behind a proxy that sets X-Forwarded-Proto, applied to this process."""
    for name, value in loaded_settings(**{**OPT_INS, "SECURE_SSL_REDIRECT": "false"}).items():
        setattr(settings, name, tuple(value) if isinstance(value, list) else value)


@pytest.mark.django_db
def test_answers_behind_an_https_proxy_carry_the_security_headers_and_secure_cookies(behind_https_proxy, client):
    UserFactory(email="dev@example.com")
    page = client.get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert page.status_code == 200
    assert page["X-Frame-Options"] == "DENY"
    assert page["X-Content-Type-Options"] == "nosniff"
    assert page["Referrer-Policy"] == "same-origin"
    assert page["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert page.cookies["csrftoken"]["secure"]

    signed_in = client.post("/login/", {"username": "dev@example.com", "password": "pw"}, HTTP_X_FORWARDED_PROTO="https")
    assert signed_in.status_code == 302
    session = signed_in.cookies[settings.SESSION_COOKIE_NAME]
    assert session["secure"] and session["httponly"]

    plain = client.get("/login/")  # not through the proxy: not HTTPS, so no HSTS
    assert "Strict-Transport-Security" not in plain
