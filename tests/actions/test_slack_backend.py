"""The SLACK backend and the Slack client against a fake Slack Web API on 127.0.0.1 (pytest-httpserver):
what it receives (path, bearer token, channel, text), rate-limit and connection retries, Slack's errors."""
import json
import socket
import time

import pytest
from django.utils import timezone
from werkzeug.wrappers import Response

from actions.choices import RunStatus
from actions.models import Action, Run
from actions.secrets import secret_set
from actions.slack import SlackFailed, slack_post, slack_user_id
from actions.tasks import run_dispatch_task
from audit import choices as audit_choices
from audit.models import AuditEvent
from portal.actor import Actor
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db
TOKEN = "xoxb-test-token"
POSTED = {"ok": True, "channel": "C0DEPLOYS", "ts": "1700000000.000100", "message": {"text": "..."}}


@pytest.fixture
def slack_api(settings, httpserver):
    settings.SLACK_BOT_TOKEN = TOKEN
    settings.SLACK_API_URL = httpserver.url_for("/api/")  # loopback: the fake Slack
    settings.SLACK_DEFAULT_CHANNEL = "#general"
    settings.SLACK_MAX_RETRIES = 2
    return httpserver


def make_run(requester, *, channel="{{ .inputs.channel }}",
             text="Deploying {{ .inputs.version }} for {{ .trigger.by.user.email }}", properties=None):
    action = Action.objects.create(
        identifier=f"announce_{Action.objects.count()}", title="Announce", trigger_type="self-service", operation="DAY-2",
        blueprint_identifier="Service", invocation_method={"type": "SLACK", "channel": channel, "text": text})
    return RunFactory(
        id=f"r_slack{Run.objects.count()}", action=action, blueprint_identifier="Service", status=RunStatus.IN_PROGRESS,
        requested_by=requester, properties=properties if properties is not None else {"channel": "#deploys", "version": "1.2.3"},
        started_at=timezone.now())


def dispatch(run):
    assert run_dispatch_task(run.id) is True
    run.refresh_from_db()
    return run


def posted(httpserver):
    return [(request, json.loads(request.get_data())) for request, _ in httpserver.log
            if request.path == "/api/chat.postMessage"]


def test_posts_the_rendered_message_and_succeeds(slack_api, requester):
    slack_api.expect_oneshot_request("/api/chat.postMessage", method="POST",
                                 headers={"Authorization": f"Bearer {TOKEN}"}).respond_with_json(POSTED)
    run = dispatch(make_run(requester))
    ((request, body),) = posted(slack_api)
    assert request.headers["Content-Type"].startswith("application/json")
    assert body == {"channel": "#deploys", "text": "Deploying 1.2.3 for dev@example.com"}
    assert run.status == RunStatus.SUCCESS and run.ended_at is not None
    assert run.status_label == "Posted to #deploys (ts 1700000000.000100)"
    assert run.payload == {"type": "SLACK", "channel": "#deploys", "text": "Deploying 1.2.3 for dev@example.com"}
    assert run.response == {"ok": True, "channel": "C0DEPLOYS", "ts": "1700000000.000100"}
    (event,) = AuditEvent.objects.filter(run_id=run.id, verb=audit_choices.RUN_UPDATED)
    assert (event.diff["before"]["status"], event.diff["after"]["status"]) == ("IN_PROGRESS", "SUCCESS")
    assert event.actor_type == Actor.system().kind


def test_a_slack_error_fails_the_run_with_slacks_error(slack_api, requester):
    slack_api.expect_oneshot_request("/api/chat.postMessage").respond_with_json({"ok": False, "error": "channel_not_found"})
    run = dispatch(make_run(requester, properties={"channel": "#nope", "version": "1"}))
    assert run.status == RunStatus.FAILURE
    assert run.status_label == "Slack refused the message: channel_not_found"
    assert run.response == {"ok": False, "error": "channel_not_found"}
    assert run.payload["channel"] == "#nope"


def test_a_429_is_retried_after_retry_after(slack_api, requester):
    slack_api.expect_ordered_request("/api/chat.postMessage").respond_with_response(
        Response(json.dumps({"ok": False, "error": "ratelimited"}), status=429,
                 headers={"Retry-After": "0", "Content-Type": "application/json"}))
    slack_api.expect_ordered_request("/api/chat.postMessage").respond_with_json(POSTED)
    started = time.monotonic()
    run = dispatch(make_run(requester))
    assert run.status == RunStatus.SUCCESS
    bodies = [body for _, body in posted(slack_api)]
    assert bodies == [{"channel": "#deploys", "text": "Deploying 1.2.3 for dev@example.com"}] * 2
    assert time.monotonic() - started < 5  # Retry-After 0 (+ slack-sdk's jitter under a second)


def test_rate_limited_past_the_retries_fails_the_run(slack_api, requester, settings):
    settings.SLACK_MAX_RETRIES = 1
    slack_api.expect_request("/api/chat.postMessage").respond_with_response(
        Response(json.dumps({"ok": False, "error": "ratelimited"}), status=429,
                 headers={"Retry-After": "0", "Content-Type": "application/json"}))
    run = dispatch(make_run(requester))
    assert len(posted(slack_api)) == 2  # the first try and one retry
    assert run.status == RunStatus.FAILURE and run.status_label == "Slack refused the message: ratelimited"


def test_a_connection_error_is_retried_then_fails_the_run(settings, requester):
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.SLACK_BOT_TOKEN = TOKEN
    settings.SLACK_API_URL = f"http://127.0.0.1:{port}/api/"
    settings.SLACK_MAX_RETRIES = 1
    run = dispatch(make_run(requester))
    assert run.status == RunStatus.FAILURE
    assert run.status_label.startswith("Slack could not be reached:") and "refused" in run.status_label.lower()


def test_a_connection_error_then_success(slack_api, requester, monkeypatch):
    """The connection retry handler: the first connection fails, the retry reaches Slack."""
    import urllib.request
    from urllib.error import URLError

    real_urlopen = urllib.request.urlopen
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise URLError(ConnectionResetError(104, "Connection reset by peer"))
        return real_urlopen(*args, **kwargs)

    monkeypatch.setattr("slack_sdk.web.base_client.urlopen", flaky, raising=False)
    monkeypatch.setattr("slack_sdk.http_retry.handler.default_interval_calculator.backoff_factor", 0.01, raising=False)
    slack_api.expect_oneshot_request("/api/chat.postMessage").respond_with_json(POSTED)
    run = dispatch(make_run(requester))
    assert run.status == RunStatus.SUCCESS and len(calls) == 2 and len(posted(slack_api)) == 1


def test_not_configured_fails_the_run_without_a_request(settings, requester, httpserver):
    settings.SLACK_BOT_TOKEN = ""
    settings.SLACK_API_URL = httpserver.url_for("/api/")
    run = dispatch(make_run(requester))
    assert run.status == RunStatus.FAILURE and run.status_label == "Slack is not configured (SLACK_BOT_TOKEN)"
    assert httpserver.log == [] and run.payload is None


def test_a_template_error_fails_the_run(slack_api, requester):
    run = dispatch(make_run(requester, text="{{ .inputs.version | tonumber }}", properties={"channel": "#d", "version": "x"}))
    assert run.status == RunStatus.FAILURE and run.status_label.startswith("Template error in text: ")
    run = dispatch(make_run(requester, channel="{{ .inputs.missing }}"))
    assert run.status == RunStatus.FAILURE
    assert run.status_label == "Template error in channel: must render to a non-empty string"
    assert slack_api.log == []


def test_secrets_are_posted_but_redacted_from_the_payload(slack_api, requester):
    secret_set(actor=Actor.system(), name="DEPLOY_KEY", value="s3cr3t-value")
    slack_api.expect_oneshot_request("/api/chat.postMessage").respond_with_json(POSTED)
    run = dispatch(make_run(requester, text="key {{ .secrets.DEPLOY_KEY }}"))
    ((_, body),) = posted(slack_api)
    assert body["text"] == "key s3cr3t-value"
    assert "s3cr3t-value" not in json.dumps(run.payload)


def test_a_dispatched_run_is_not_posted_twice(slack_api, requester):
    slack_api.expect_oneshot_request("/api/chat.postMessage").respond_with_json(POSTED)
    run = dispatch(make_run(requester))
    assert run_dispatch_task(run.id) is False
    assert len(posted(slack_api)) == 1


def test_users_lookup_by_email(slack_api):
    def lookup(request):
        email = request.values.get("email")
        if email == "dev@example.com":
            return Response(json.dumps({"ok": True, "user": {"id": "U0DEV", "name": "dev"}}), content_type="application/json")
        return Response(json.dumps({"ok": False, "error": "users_not_found"}), content_type="application/json")

    slack_api.expect_request("/api/users.lookupByEmail", headers={"Authorization": f"Bearer {TOKEN}"}).respond_with_handler(lookup)
    assert slack_user_id("dev@example.com") == "U0DEV"
    assert slack_user_id("ghost@example.com") is None
    assert [request.values.get("email") for request, _ in slack_api.log] == ["dev@example.com", "ghost@example.com"]


def test_slack_post_passes_blocks_and_raises_slack_errors(slack_api):
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    slack_api.expect_oneshot_request("/api/chat.postMessage").respond_with_json(POSTED)
    assert slack_post("#general", "hi", blocks=blocks)["ts"] == POSTED["ts"]
    assert posted(slack_api)[0][1] == {"channel": "#general", "text": "hi", "blocks": blocks}
    slack_api.expect_oneshot_request("/api/chat.postMessage").respond_with_json({"ok": False, "error": "not_in_channel"})
    with pytest.raises(SlackFailed) as failed:
        slack_post("#private", "hi")
    assert failed.value.error == "not_in_channel" and failed.value.label == "Slack refused the message: not_in_channel"
