"""The WEBHOOK backend against real receivers on 127.0.0.1 (pytest-httpserver): what they receive (method,
path, headers, signature recomputed over the raw bytes, body), retries, synchronized runs, refusals."""
import base64
import hashlib
import hmac
import json
import time

import pytest
from django.test import TestCase
from django.utils import timezone
from werkzeug.wrappers import Response

from actions.backends import backend_dispatch, webhook
from actions.backends.signing import signing_secret
from actions.choices import RunStatus
from actions.models import Action, Run
from actions.secrets import secret_set
from actions.serializers import run_json
from actions.tasks import run_dispatch_task
import portal.outbox
from catalog.models import Blueprint
from portal.actor import Actor
from tests.factories import ActionFactory, BlueprintFactory, EntityFactory, RunFactory, UserFactory
from tests.outbox import published

pytestmark = pytest.mark.django_db
SIGNING_KEY = "whsec_test_key"


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
    settings.WEBHOOK_SIGNING_SECRET = SIGNING_KEY
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.01
    settings.WEBHOOK_TIMEOUT_SECONDS = 5
    settings.CELERY_TASK_ALWAYS_EAGER = True
    return settings


@pytest.fixture
def named_requester(db):
    user = UserFactory(email="dev@example.com")
    user.first_name, user.last_name = "Dee", "Veloper"
    user.save()
    return user


def make_run(named_requester, invocation, *, properties=None, entity=None, operation="DAY-2"):
    action = ActionFactory(
        identifier=f"act_{Action.objects.count()}", title="Deploy", trigger_type="self-service", operation=operation,
        blueprint_identifier="Service",
        trigger={"type": "self-service", "operation": operation, "blueprintIdentifier": "Service",
                 "userInputs": {"properties": {}, "required": []}},
        invocation_method={"type": "WEBHOOK", **invocation})
    return RunFactory(
        id=f"r_{Run.objects.count():04d}", action=action, blueprint_identifier="Service", status=RunStatus.IN_PROGRESS,
        requested_by=named_requester, origin="UI", properties=properties or {}, started_at=timezone.now(),
        entity=entity, entity_identifier=entity.identifier if entity else "")


def dispatch(run):
    """As a worker does: claim (the first try counts), then the backend; retries are delivered after commit."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        run_dispatch_task(run.id)
    run.refresh_from_db()
    return run


def recorded(httpserver, path, responses):
    """Answer `path` with `responses` in turn (the last one repeats); keep the requests."""
    received = []

    def handler(request):
        received.append(request)
        status, body, headers = responses[min(len(received), len(responses)) - 1]
        return Response(body, status=status, headers=headers or {})

    httpserver.expect_request(path).respond_with_handler(handler)
    return received


def expected_signature(timestamp, raw):
    digest = hmac.new(SIGNING_KEY.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_classic_envelope_is_signed_and_sent(named_requester, httpserver):
    BlueprintFactory(identifier="Service", title="Service",
                     schema={"properties": {"tier": {"type": "string"}}})
    EntityFactory(blueprint=Blueprint.objects.get(), identifier="portal", properties={"tier": "1"})
    received = recorded(httpserver, "/hooks/deploy", [(200, "accepted", None)])
    run = make_run(named_requester, {"url": httpserver.url_for("/hooks/deploy")}, properties={"branch": "main"},
                   entity=Blueprint.objects.get().entities.get())
    before = int(time.time())
    run = dispatch(run)

    (request,) = received
    assert request.method == "POST" and request.path == "/hooks/deploy"
    assert request.headers["Content-Type"] == "application/json"
    timestamp = request.headers["x-port-timestamp"]
    assert before <= int(timestamp) <= time.time()
    raw = request.get_data()
    assert request.headers["x-port-signature"] == expected_signature(timestamp, raw)
    body = json.loads(raw)
    assert raw == json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode()
    assert list(body) == ["action", "resourceType", "status", "trigger", "context", "payload"]
    assert body["action"] == run.action.identifier and body["resourceType"] == "run" and body["status"] == "TRIGGERED"
    assert body["trigger"]["by"]["user"] == {"email": "dev@example.com", "firstName": "Dee", "lastName": "Veloper"}
    assert body["trigger"]["origin"] == "UI"
    assert body["context"] == {"entity": "portal", "blueprint": "Service", "runId": run.id}
    assert body["payload"]["entity"]["identifier"] == "portal"
    assert body["payload"]["properties"] == {"branch": "main"}
    assert body["payload"]["action"] == {"invocationMethod": run.action.invocation_method, "trigger": run.action.trigger}
    # Not synchronized: the receiver reports back later.
    assert run.status == RunStatus.IN_PROGRESS and run.attempts == 1 and run.response is None
    assert run.payload["body"] == body and run.payload["url"] == httpserver.url_for("/hooks/deploy")


def test_templated_request_with_spread_nulls_and_secrets(named_requester, httpserver):
    secret_set(actor=Actor.system(), name="DEPLOY_TOKEN", value="tok-Very-Secret")
    received = recorded(httpserver, "/deploy/main", [(201, "", None)])
    invocation = {
        "url": httpserver.url_for("/deploy/") + "{{ .inputs.branch }}",
        "method": "PUT",
        "headers": {"Authorization": "Bearer {{ .secrets.DEPLOY_TOKEN }}", "X-Replicas": "{{ .inputs.replicas }}"},
        "body": {
            "message": "Déploy {{ .inputs.branch }} for {{ .trigger.by.user.email }}",
            "replicas": "{{ .inputs.replicas }}",
            "{{ spreadValue() }}": "{{ .inputs.extra }}",
            "dropped": "{{ .inputs.missing }}",
            "token": "{{ .secrets.DEPLOY_TOKEN }}",
            "run": {"id": "{{ .run.id }}", "action": "{{ .action.identifier }}"},
        },
    }
    run = dispatch(make_run(named_requester, invocation, properties={"branch": "main", "replicas": 2, "extra": {"zone": "eu", "ha": True}}))

    (request,) = received
    assert request.method == "PUT" and request.path == "/deploy/main"
    assert request.headers["Authorization"] == "Bearer tok-Very-Secret" and request.headers["X-Replicas"] == "2"
    expected = {"message": "Déploy main for dev@example.com", "replicas": 2, "zone": "eu", "ha": True,
                "token": "tok-Very-Secret", "run": {"id": run.id, "action": run.action.identifier}}
    raw = request.get_data()
    assert json.loads(raw) == expected
    # Compact, non-ASCII escaped; key order is the stored definition's (jsonb reorders keys: see
    # test_body_bytes_keep_the_template_order for the renderer's own order).
    assert raw == json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=True).encode()
    assert b"\\u00e9" in raw  # non-ASCII escaped, as Port's agent re-serializes
    assert request.headers["x-port-signature"] == expected_signature(request.headers["x-port-timestamp"], raw)
    stored = json.dumps(run.payload)
    assert "tok-Very-Secret" not in stored
    # Authorization holds literal text: write-only as a whole (actions/credentials.py); X-Replicas is a plain template.
    assert run.payload["headers"] == {"Authorization": "[redacted]", "X-Replicas": "2"}
    assert run.payload["body"]["token"] == "[redacted]"
    assert run.payload["method"] == "PUT" and run.status == RunStatus.IN_PROGRESS


def test_body_bytes_keep_the_template_order():
    from actions.backends.signing import body_bytes
    from actions.templating import render_template

    template = {"zeta": "{{ .a }}", "alpha": 1, "{{ spreadValue() }}": {"mid": "é"}, "beta": None}
    assert body_bytes(render_template(template, {"a": "x"})) == b'{"zeta":"x","alpha":1,"mid":"\\u00e9"}'


def test_body_keeps_the_template_order_through_the_database(named_requester, httpserver):
    """jsonb reorders keys; the action keeps the definition as written, so the bytes sent follow it."""
    from actions.services.actions import action_create

    BlueprintFactory(identifier="Service", title="Service", schema={"properties": {}})
    action = action_create(actor=Actor.system(), data={
        "identifier": "ordered", "title": "Ordered",
        "trigger": {"type": "self-service", "operation": "CREATE", "blueprintIdentifier": "Service",
                    "userInputs": {"properties": {}, "required": []}},
        "invocationMethod": {"type": "WEBHOOK", "url": httpserver.url_for("/ordered"),
                             "body": {"zeta": 1, "alpha": 2, "mid": "{{ .run.id }}", "aa": 3}},
    })
    action.refresh_from_db()
    assert list(action.invocation_method["body"]) != ["zeta", "alpha", "mid", "aa"]  # what jsonb did to it
    received = recorded(httpserver, "/ordered", [(200, "{}", None)])
    run = RunFactory(id="r_order", action=action, blueprint_identifier="Service", status=RunStatus.IN_PROGRESS,
                             requested_by=named_requester, origin="API", started_at=timezone.now())
    dispatch(run)
    assert received[0].get_data() == b'{"zeta":1,"alpha":2,"mid":"r_order","aa":3}'


def test_signing_secret_falls_back_to_the_admin_secret_then_secret_key(settings):
    settings.WEBHOOK_SIGNING_SECRET = ""
    derived = signing_secret()
    assert len(derived) == 64 and derived == signing_secret()
    secret_set(actor=Actor.system(), name="WEBHOOK_SIGNING_SECRET", value="from-admin")
    assert signing_secret() == "from-admin"
    settings.WEBHOOK_SIGNING_SECRET = "from-env"
    assert signing_secret() == "from-env"


def test_retries_until_the_receiver_recovers(named_requester, httpserver):
    received = recorded(httpserver, "/flaky", [(500, "boom", None), (502, "bad gateway", None), (200, "ok", None)])
    run = dispatch(make_run(named_requester, {"url": httpserver.url_for("/flaky")}))
    assert len(received) == 3
    assert run.attempts == 3 and run.status == RunStatus.IN_PROGRESS
    bodies = {request.get_data() for request in received}
    assert len(bodies) == 1  # every try sends the same body


def test_a_retry_delivered_twice_is_sent_once(named_requester, httpserver, monkeypatch):
    received = recorded(httpserver, "/flaky", [(500, "boom", None), (200, "ok", None)])
    retries = published(monkeypatch, webhook.webhook_deliver_task)  # queued, not run
    run = dispatch(make_run(named_requester, {"url": httpserver.url_for("/flaky")}))
    assert retries == [("actions.webhook_deliver", [run.id, 2])] and len(received) == 1
    assert run_json(run)["waitingFor"].startswith("delivery (attempt 2 of 5, next at ")
    webhook.webhook_deliver_task(run.id, 2)
    webhook.webhook_deliver_task(run.id, 2)  # redelivered (a sweep, a lease expiry racing a late worker)
    webhook.webhook_deliver_task(run.id, 1)  # an attempt the run has gone past
    run.refresh_from_db()
    assert len(received) == 2 and run.attempts == 2 and run.status == RunStatus.IN_PROGRESS
    assert run.delivery_lease_until is None and run_json(run)["waitingFor"] == "the receiver's report"


def test_gives_up_after_max_attempts(named_requester, httpserver, webhook_settings):
    webhook_settings.WEBHOOK_MAX_ATTEMPTS = 3
    received = recorded(httpserver, "/down", [(503, "down", None)])
    run = dispatch(make_run(named_requester, {"url": httpserver.url_for("/down")}))
    assert len(received) == 3 and run.attempts == 3
    assert run.status == RunStatus.FAILURE and run.status_label == "Webhook answered 503 after 3 attempts"


def test_connection_errors_are_retried(named_requester, webhook_settings):
    webhook_settings.WEBHOOK_MAX_ATTEMPTS = 2
    run = dispatch(make_run(named_requester, {"url": "http://127.0.0.1:9/closed"}))  # discard port: nothing listens
    assert run.attempts == 2 and run.status == RunStatus.FAILURE
    assert run.status_label.startswith("Webhook delivery failed (") and run.status_label.endswith("after 2 attempts")


def test_429_honours_retry_after_capped(named_requester, httpserver, monkeypatch, webhook_settings):
    webhook_settings.WEBHOOK_RETRY_MAX_SECONDS = 30
    received = recorded(httpserver, "/limited", [(429, "slow down", {"Retry-After": "7"}),
                                                 (429, "slow down", {"Retry-After": "3600"}), (200, "", None)])
    countdowns = []

    def deliver(messages, **options):  # a fake broker: note the delay, run the next try now
        for message in messages:
            countdowns.append(round((message.not_before - message.created_at).total_seconds()))
            webhook.webhook_deliver_task(*message.args)
        return len(messages)

    monkeypatch.setattr(portal.outbox, "outbox_publish_many", deliver)
    run = dispatch(make_run(named_requester, {"url": httpserver.url_for("/limited")}))
    assert countdowns == [7.0, 30.0]
    assert len(received) == 3 and run.attempts == 3


def test_backoff_is_exponential_and_capped(webhook_settings):
    webhook_settings.WEBHOOK_RETRY_BASE_SECONDS = 2
    webhook_settings.WEBHOOK_RETRY_MAX_SECONDS = 60
    assert [webhook.retry_delay(attempt) for attempt in range(1, 7)] == [2, 4, 8, 16, 32, 60]


def test_client_errors_fail_without_retry(named_requester, httpserver):
    received = recorded(httpserver, "/missing", [(404, "no such hook", None)])
    run = dispatch(make_run(named_requester, {"url": httpserver.url_for("/missing")}))
    assert len(received) == 1 and run.attempts == 1
    assert run.status == RunStatus.FAILURE and run.status_label == "Webhook answered 404"


def test_synchronized_success_stores_the_response(named_requester, httpserver):
    recorded(httpserver, "/sync", [(200, json.dumps({"ok": True, "url": "https://env.example.com"}),
                                    {"Content-Type": "application/json"})])
    run = dispatch(make_run(named_requester, {"url": httpserver.url_for("/sync"), "synchronized": True}))
    assert run.status == RunStatus.SUCCESS and run.status_label == "Webhook answered 200"
    assert run.response == {"ok": True, "url": "https://env.example.com"}
    assert run.ended_at is not None


@pytest.mark.parametrize("body, content_type, stored", [
    ('{"ok": true, "note": "a\\u0000b", "half": "\\ud800", "ratio": NaN, "big": 1e999}', "application/json",
     {"ok": True, "note": "a\ufffdb", "half": "\ufffd", "ratio": None, "big": None}),
    ("plain \x00 text", "text/plain", "plain \ufffd text"),
])
def test_an_answer_the_database_cannot_hold_is_stored_made_storable(named_requester, httpserver, body, content_type, stored):
    """NUL, a lone surrogate or NaN from a receiver must not fail the run's write (it stayed IN_PROGRESS until its
    timeout): the answer is kept with those replaced and the run ends as the status says."""
    recorded(httpserver, "/sync", [(200, body, {"Content-Type": content_type})])
    run = dispatch(make_run(named_requester, {"url": httpserver.url_for("/sync"), "synchronized": True}))
    assert run.status == RunStatus.SUCCESS and run.response == stored


def test_synchronized_failure_stores_the_text_truncated(named_requester, httpserver):
    recorded(httpserver, "/sync", [(400, "x" * 100_000, None)])
    run = dispatch(make_run(named_requester, {"url": httpserver.url_for("/sync"), "synchronized": True}))
    assert run.status == RunStatus.FAILURE and run.status_label == "Webhook answered 400"
    assert run.response == "x" * 65536


@pytest.mark.parametrize("url, ip, reason", [
    ("http://10.0.0.1/hook", "10.0.0.1", "private"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "link-local"),
])
def test_private_destinations_are_refused_without_retry(named_requester, webhook_settings, url, ip, reason):
    webhook_settings.OUTBOUND_ALLOWED_NETWORKS = []
    run = dispatch(make_run(named_requester, {"url": url}))
    assert run.status == RunStatus.FAILURE and run.attempts == 1
    assert ip in run.status_label and reason in run.status_label
    assert run.status_label.startswith("Webhook not sent: ")


def test_a_name_resolving_to_loopback_is_refused(named_requester, httpserver, webhook_settings):
    webhook_settings.OUTBOUND_ALLOWED_NETWORKS = []
    received = recorded(httpserver, "/hook", [(200, "", None)])
    url = f"http://localhost:{httpserver.port}/hook"
    run = dispatch(make_run(named_requester, {"url": url}))
    assert received == [] and run.attempts == 1
    assert run.status == RunStatus.FAILURE and "localhost" in run.status_label and "loopback" in run.status_label


def test_redirects_are_not_followed(named_requester, httpserver):
    received = recorded(httpserver, "/old", [(307, "", {"Location": "http://169.254.169.254/"})])
    run = dispatch(make_run(named_requester, {"url": httpserver.url_for("/old")}))
    assert len(received) == 1 and run.attempts == 1
    assert run.status == RunStatus.FAILURE and run.status_label == "Webhook answered 307 (redirects are not followed)"


def test_a_looping_template_fails_the_run_in_time(named_requester, httpserver, webhook_settings):
    webhook_settings.JQ_TIMEOUT_SECONDS = 0.5
    received = recorded(httpserver, "/hook", [(200, "", None)])
    started = time.monotonic()
    run = dispatch(make_run(named_requester, {"url": httpserver.url_for("/hook"),
                                        "body": {"message": "{{ until(false; .) }}"}}))
    assert time.monotonic() - started < 3
    assert received == [] and run.status == RunStatus.FAILURE
    assert run.status_label.startswith("Template error in body.message: ")


def test_agent_runs_are_stored_not_pushed(named_requester, httpserver):
    received = recorded(httpserver, "/hook", [(200, "", None)])
    run = dispatch(make_run(named_requester, {"url": httpserver.url_for("/hook"), "agent": True,
                                        "body": {"branch": "{{ .inputs.branch }}"}}, properties={"branch": "dev"}))
    assert received == [] and run.status == RunStatus.IN_PROGRESS
    assert run.payload == {"type": "WEBHOOK", "url": httpserver.url_for("/hook"), "agent": True, "synchronized": False,
                           "method": "POST", "headers": {}, "body": {"branch": "dev"}}


def test_a_run_that_ended_meanwhile_is_not_sent(named_requester, httpserver):
    received = recorded(httpserver, "/hook", [(200, "", None)])
    run = make_run(named_requester, {"url": httpserver.url_for("/hook")})
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILURE)
    backend_dispatch(run.id)
    webhook.webhook_deliver(run.id, 2)
    assert received == []


def test_unconfigured_backends_fail_the_run(named_requester):
    run = make_run(named_requester, {})
    # Every valid type has a backend now (issue 4); a type without one (a stale row, say) still fails cleanly.
    Action.objects.filter(pk=run.action_id).update(invocation_method={"type": "FTP", "host": "h"})
    run = dispatch(run)
    assert run.status == RunStatus.FAILURE
    assert run.status_label == "The FTP backend is not configured on this portal yet."
