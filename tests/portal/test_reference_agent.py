"""The reference execution agent (portal/agent.py) end to end: the portal on `live_server`, a receiver on
127.0.0.1 (pytest-httpserver) asserting what it got, the agent polling once in between."""
import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.utils import timezone
from werkzeug.wrappers import Response

from actions.choices import RunStatus
from actions.models import Action
from actions.secrets import secret_set
from actions.services.agent import RUN_AGENT_ACKED, RUN_RESPONSE_RECORDED
from actions.tasks import run_dispatch_task
from audit.models import AuditEvent
from portal import agent as reference_agent
from portal.actor import Actor
from tests.factories import ApiClientFactory, RunFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
SIGNING_KEY = "whsec_agent_test"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def reference_agent_settings(settings):
    settings.WEBHOOK_SIGNING_SECRET = SIGNING_KEY
    return settings


@pytest.fixture
def admin_credential(db):
    admin = UserFactory(email="platform@example.com", admin=True)
    client = ApiClientFactory(user=admin)
    return client.client_id, client.secret


def agent_run(url, *, synchronized=True):
    secret_set(actor=Actor.system(), name="DEPLOY_TOKEN", value="tok-Very-Secret")
    invocation = {"type": "WEBHOOK", "agent": True, "synchronized": synchronized, "method": "POST", "url": url,
                  "headers": {"Authorization": "Bearer {{ .secrets.DEPLOY_TOKEN }}"},
                  "body": {"branch": "{{ .inputs.branch }}", "runId": "{{ .run.id }}"}}
    action = Action.objects.create(
        identifier="deploy", title="Deploy", trigger_type="self-service", operation="DAY-2",
        trigger={"type": "self-service", "operation": "DAY-2", "userInputs": {"properties": {}, "required": []}},
        invocation_method=invocation, invocation_method_text=json.dumps(invocation))
    run = RunFactory(id="r_agent1", action=action, status=RunStatus.IN_PROGRESS, origin="API",
                             requested_by=UserFactory(email="dev@example.com"), properties={"branch": "main"},
                             started_at=timezone.now())
    run_dispatch_task(run.id)
    return run


def receiver(httpserver, path, status=200, body=None):
    received = []

    def handler(request):
        received.append(request)
        return Response(json.dumps(body) if body is not None else "", status=status, content_type="application/json")

    httpserver.expect_request(path).respond_with_handler(handler)
    return received


def run_agent(live_server, admin_credential, *extra):
    client_id, client_secret = admin_credential
    # `--opt=value`: generated secrets may start with "-", which argparse would take for an option.
    return reference_agent.main(["--once", f"--portal-url={live_server.url}", f"--client-id={client_id}",
                                 f"--client-secret={client_secret}", "--installation-id=dc-1",
                                 f"--signing-secret={SIGNING_KEY}", "--timeout=10", *extra])


def expected_signature(timestamp, raw):
    digest = hmac.new(SIGNING_KEY.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_agent_claims_forwards_signed_and_reports_a_synchronized_run(live_server, httpserver, admin_credential):
    received = receiver(httpserver, "/internal/deploy", body={"deployed": "main"})
    run = agent_run(httpserver.url_for("/internal/deploy"))
    before = int(time.time())

    assert run_agent(live_server, admin_credential) == 0

    (request,) = received
    assert request.method == "POST" and request.path == "/internal/deploy"
    assert request.headers["Authorization"] == "Bearer tok-Very-Secret"  # the secret reached the receiver
    assert request.headers["Content-Type"] == "application/json"
    raw = request.get_data()
    assert raw == b'{"branch":"main","runId":"r_agent1"}'
    timestamp = request.headers["x-port-timestamp"]
    assert before <= int(timestamp) <= time.time()
    assert request.headers["x-port-signature"] == expected_signature(timestamp, raw)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCESS and run.status_label == "Webhook answered 200 (via execution agent)"
    assert run.response == {"deployed": "main"}
    assert run.agent_installation_id == "dc-1" and run.agent_acked_at is not None
    assert "tok-Very-Secret" not in json.dumps(run.payload)
    assert [log.message for log in run.logs.all()] == ["Execution agent 'dc-1' forwarded the run; the receiver answered 200."]
    verbs = list(AuditEvent.objects.filter(run_id=run.id).order_by("id").values_list("verb", flat=True))
    assert verbs[-4:] == [RUN_AGENT_ACKED, RUN_RESPONSE_RECORDED, "actions.run.log_added", "actions.run.updated"]
    # Acked: a second agent finds nothing to do.
    assert run_agent(live_server, admin_credential) == 0
    assert len(received) == 1


def test_agent_leaves_an_asynchronous_run_for_the_receiver_to_report(live_server, httpserver, admin_credential):
    received = receiver(httpserver, "/internal/deploy", status=202, body={"queued": True})
    run = agent_run(httpserver.url_for("/internal/deploy"), synchronized=False)

    run_agent(live_server, admin_credential)

    assert len(received) == 1
    run.refresh_from_db()
    assert run.status == RunStatus.IN_PROGRESS and run.response == {"queued": True} and run.agent_acked_at is not None


def test_agent_fails_the_run_when_the_receiver_refuses(live_server, httpserver, admin_credential):
    receiver(httpserver, "/internal/deploy", status=500, body={"error": "boom"})
    run = agent_run(httpserver.url_for("/internal/deploy"), synchronized=False)

    run_agent(live_server, admin_credential)

    run.refresh_from_db()
    assert run.status == RunStatus.FAILURE and run.status_label == "Webhook answered 500 (via execution agent)"
    assert run.response == {"error": "boom"}


def test_forward_url_overrides_the_payload_url(live_server, httpserver, admin_credential):
    received = receiver(httpserver, "/inside/the/network", body={"ok": 1})
    run = agent_run("http://deployer.invalid/hook")

    run_agent(live_server, admin_credential, "--forward-url", httpserver.url_for("/inside/the/network"))

    assert [request.path for request in received] == ["/inside/the/network"]
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCESS


def test_agent_stops_cleanly_on_sigterm(tmp_path):
    """Polling an unreachable portal (backing off), SIGTERM ends it at once with status 0."""
    env = {**os.environ, "PORTAL_URL": "http://127.0.0.1:9", "PORTAL_CLIENT_ID": "id", "PORTAL_CLIENT_SECRET": "secret",
           "AGENT_POLL_INTERVAL_SECONDS": "30", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "portal.agent"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 20
        output = ""
        while "poll failed" not in output and time.time() < deadline:  # it is in its loop, waiting
            line = process.stdout.readline()
            if not line:
                break
            output += line
        assert "poll failed" in output, output
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
