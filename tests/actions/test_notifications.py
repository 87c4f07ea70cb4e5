"""Slack notifications against a fake Slack on 127.0.0.1: each message is queued once on its transition (after
commit), reaches the right channel or user with the right text, and stays quiet when switched off portal-wide
or per action. Also: the per-action `notifications` key, and the NotificationSettings service and admin."""
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from werkzeug.wrappers import Response

from actions import tasks
from actions.choices import RunStatus
from actions.models import Action, NotificationSettings
from actions.notifications import notification_settings_update, notify_termination_failed, notify_ttl_warning
from actions.services.actions import action_create
from actions.services.approvals import approval_decide
from actions.services.runs import run_finish, run_log_add, run_request, run_update
from audit import choices as audit_choices
from audit.models import AuditEvent
from catalog.models import Entity, Timer
from portal.actor import Actor
from portal.errors import ValidationFailed
from portal.datetimes import instant_text
from tests.factories import ActionFactory, BlueprintFactory, EntityFactory, RunFactory
from tests.outbox import on_publish
from tests.support.runs import actor_of, grant

pytestmark = pytest.mark.django_db
TOKEN = "xoxb-notify"
BASE = "https://portal.example.com"
SLACK_USERS = {"dev@example.com": "U0DEV"}  # others are unknown to Slack
NOTIFY_TASKS = {"approval": tasks.run_approval_waiting_notify_task, "ended": tasks.run_ended_notify_task}


class FakeSlack:
    """chat.postMessage and users.lookupByEmail on a loopback server; records what it received."""

    def __init__(self, httpserver):
        self.server = httpserver
        self.messages = []
        httpserver.expect_request("/api/chat.postMessage").respond_with_handler(self._post)
        httpserver.expect_request("/api/users.lookupByEmail").respond_with_handler(self._lookup)

    def _post(self, request):
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        self.messages.append(json.loads(request.get_data()))
        return Response(json.dumps({"ok": True, "channel": "C1", "ts": f"1700000000.{len(self.messages):06d}"}),
                        content_type="application/json")

    def _lookup(self, request):
        user_id = SLACK_USERS.get(request.values.get("email"))
        body = {"ok": True, "user": {"id": user_id}} if user_id else {"ok": False, "error": "users_not_found"}
        return Response(json.dumps(body), content_type="application/json")


@pytest.fixture
def slack(settings, httpserver):
    settings.SLACK_BOT_TOKEN = TOKEN
    settings.SLACK_API_URL = httpserver.url_for("/api/")
    settings.SLACK_DEFAULT_CHANNEL = "#general"
    settings.PORTAL_BASE_URL = BASE + "/"
    return FakeSlack(httpserver)


@pytest.fixture
def queued(monkeypatch):
    """The notification tasks queued (by name, run id) instead of sent to the broker; `deliver()` runs them."""
    calls = []
    on_publish(monkeypatch, {task: (lambda args, name=name: calls.append((name, *args))) for name, task in NOTIFY_TASKS.items()})
    on_publish(monkeypatch, {tasks.run_dispatch_task: lambda args: None})
    return calls


def deliver(calls):
    return [NOTIFY_TASKS[name](run_id) for name, run_id in calls]


def waiting_run(users, capture, **fields):
    action = ActionFactory(required_approval=True, inputs={"branch": {"type": "string"}, "replicas": {"type": "number"}},
                         **fields)
    grant("execute", action, users=[users["dev"]])
    grant("approve", action, teams=["managers"])
    with capture(execute=True):
        return run_request(actor=actor_of(users["dev"]), action=action, properties={"branch": "feat-<x>", "replicas": 2},
                           entity_identifier="portal")


def started_run(users, capture, **fields):
    action = ActionFactory(**fields)
    grant("execute", action, users=[users["dev"]])
    with capture(execute=True):
        return run_request(actor=actor_of(users["dev"]), action=action, properties={"branch": "main"},
                           entity_identifier="portal")


# --- a run waits for approval ---------------------------------------------------------------------------

def test_waiting_run_tells_the_approvers_channel_once(users, slack, queued, django_capture_on_commit_callbacks):
    notification_settings_update(actor=Actor.system(), values={"approvers_channel": "#approvers"})
    run = waiting_run(users, django_capture_on_commit_callbacks)
    assert queued == [("approval", run.id)]
    assert deliver(queued) == [True]
    (message,) = slack.messages
    assert message["channel"] == "#approvers"
    assert message["text"] == (
        "Run of *Deploy* requested by dev@example.com is waiting for approval.\nEntity: portal\n"
        "Inputs:\n• branch: feat-&lt;x&gt;\n• replicas: 2\n"
        f"<{BASE}/approvals/|Open the approval queue>")


def test_waiting_run_goes_to_the_default_channel_without_an_approvers_channel(users, slack, queued,
                                                                              django_capture_on_commit_callbacks):
    waiting_run(users, django_capture_on_commit_callbacks)
    deliver(queued)
    assert [m["channel"] for m in slack.messages] == ["#general"]


def test_a_run_decided_before_the_message_goes_out_is_not_announced(users, slack, queued,
                                                                    django_capture_on_commit_callbacks):
    run = waiting_run(users, django_capture_on_commit_callbacks)
    approval_decide(actor=actor_of(users["manager"]), run=run, decision="APPROVE")
    assert tasks.run_approval_waiting_notify_task(run.id) is False
    assert slack.messages == []


@pytest.mark.parametrize("switch", ["global", "global_slack", "action"])
def test_approval_waiting_switched_off(users, slack, queued, django_capture_on_commit_callbacks, switch):
    if switch == "global":
        notification_settings_update(actor=Actor.system(), values={"approval_waiting": False})
    elif switch == "global_slack":
        notification_settings_update(actor=Actor.system(), values={"slack_enabled": False})
    run = waiting_run(users, django_capture_on_commit_callbacks,
                      notifications={"approvalWaiting": False} if switch == "action" else None)
    assert deliver(queued) == [False]
    assert run.status == RunStatus.WAITING_FOR_APPROVAL and slack.messages == []


def test_nothing_is_queued_while_slack_is_not_configured(users, settings, queued, django_capture_on_commit_callbacks):
    settings.SLACK_BOT_TOKEN = ""
    run = waiting_run(users, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(actor=actor_of(users["manager"]), run=run, decision="DECLINE")
    assert queued == []


def test_nothing_is_queued_before_commit(users, slack, queued, django_capture_on_commit_callbacks):
    action = ActionFactory(required_approval=True)
    grant("execute", action, users=[users["dev"]])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal")
    assert queued == [] and callbacks  # only once the transaction commits


# --- a run ends -----------------------------------------------------------------------------------------

def test_a_run_ending_tells_the_requester_by_direct_message_once(users, slack, queued,
                                                                 django_capture_on_commit_callbacks):
    run = started_run(users, django_capture_on_commit_callbacks)
    assert queued == []  # IN_PROGRESS is not news
    with django_capture_on_commit_callbacks(execute=True):
        run_update(actor=actor_of(users["dev"]), run=run, status="SUCCESS", status_label="Deployed v2")
    with django_capture_on_commit_callbacks(execute=True):  # a later PATCH of the ended run: no second message
        run_update(actor=actor_of(users["dev"]), run=run, link="https://ci.example.com/1")
    assert queued == [("ended", run.id)]
    assert deliver(queued) == [True]
    (message,) = slack.messages
    assert message == {"channel": "U0DEV", "text": "Your run of *Deploy* ended: *SUCCESS* — Deployed v2\n"
                                                   f"<{BASE}/runs/{run.id}/|View run {run.id}>"}


def test_a_requester_unknown_to_slack_is_named_in_the_default_channel(users, slack, queued,
                                                                      django_capture_on_commit_callbacks):
    action = ActionFactory()
    grant("execute", action, users=[users["other"]])
    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(actor=actor_of(users["other"]), action=action, properties={}, entity_identifier="portal")
    with django_capture_on_commit_callbacks(execute=True):
        run_finish(actor=Actor.system(), run=run, status="FAILURE", label="Webhook answered 500")
    deliver(queued)
    (message,) = slack.messages
    assert message["channel"] == "#general"
    assert message["text"].startswith("other@example.com: Your run of *Deploy* ended: *FAILURE* — Webhook answered 500")


def test_a_declined_run_tells_the_requester(users, slack, queued, django_capture_on_commit_callbacks):
    run = waiting_run(users, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(actor=actor_of(users["manager"]), run=run, decision="DECLINE", description="not today")
    assert queued == [("approval", run.id), ("ended", run.id)]
    deliver(queued)
    # the approval message is skipped (no longer waiting); the requester hears of the decline
    (message,) = slack.messages
    assert message["channel"] == "U0DEV"
    assert "ended: *DECLINED* — Declined by manager@example.com: not today" in message["text"]


def test_a_termination_log_ends_the_run_once(users, slack, queued, django_capture_on_commit_callbacks):
    run = started_run(users, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        run_log_add(actor=actor_of(users["dev"]), run=run, message="done", termination_status="FAILURE")
    assert queued == [("ended", run.id)]


@pytest.mark.parametrize("switch", ["global", "action"])
def test_run_ended_switched_off(users, slack, queued, django_capture_on_commit_callbacks, switch):
    if switch == "global":
        notification_settings_update(actor=Actor.system(), values={"run_ended": False})
    run = started_run(users, django_capture_on_commit_callbacks,
                      notifications={"runEnded": False} if switch == "action" else None)
    with django_capture_on_commit_callbacks(execute=True):
        run_update(actor=actor_of(users["dev"]), run=run, status="SUCCESS")
    assert deliver(queued) == [False] and slack.messages == []


def test_the_run_changed_announcement(users, queued, django_capture_on_commit_callbacks):
    """What other subscribers (automations) get: CREATE then UPDATE with the status before and the run JSON after."""
    from portal import events

    seen = []
    events.subscribe(events.RUN_CHANGED, seen.append)
    try:
        run = started_run(users, django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            run_update(actor=actor_of(users["dev"]), run=run, status="SUCCESS")
    finally:
        events._subscribers[events.RUN_CHANGED].remove(seen.append)
    created, updated = seen
    assert (created["action"], created["runId"], created["actionIdentifier"], created["before"]) == \
        ("CREATE", run.id, "deploy", None)
    assert created["after"]["status"] == "IN_PROGRESS" and created["after"]["id"] == run.id
    assert updated["action"] == "UPDATE" and updated["before"]["status"] == "IN_PROGRESS"
    assert updated["after"]["status"] == "SUCCESS" and updated["after"]["endedAt"] is not None


# --- TTL warnings and failed teardowns -----------------------------------------------------------------

@pytest.fixture
def environment(db):
    """A devEnv entity created by a CREATE run of a TTL'd action, its timer 20 hours from now."""
    BlueprintFactory(identifier="devEnv", title="Dev environment",
                     schema={"properties": {"expiresAt": {"type": "string", "format": "timer"}}})
    from tests.factories import UserFactory

    owner = UserFactory(email="dev@example.com")
    action = ActionFactory(identifier="create_env", operation="CREATE", blueprint="devEnv",
                         ttl={"property": "expiresAt", "default": "P5D"})
    expires = timezone.now() + timedelta(hours=20)
    EntityFactory(blueprint="devEnv", identifier="dev-feat/x", title="feat x",
                  properties={"expiresAt": expires.isoformat()})
    entity = Entity.objects.get(identifier="dev-feat/x")
    RunFactory(id="r_create_env", action=action, blueprint_identifier="devEnv", status=RunStatus.SUCCESS,
                       requested_by=owner, result_entity=entity)
    assert Timer.objects.filter(entity=entity, property="expiresAt").exists()
    return entity


def test_ttl_warning_tells_the_owner_with_an_extend_link(slack, environment):
    assert tasks.ttl_warning_notify_task(environment.pk, "expiresAt") is True
    (message,) = slack.messages
    timer = Timer.objects.get(entity=environment)
    assert message["channel"] == "U0DEV"
    assert message["text"] == (
        f"Dev environment feat x expires in about 20 hours ({instant_text(timer.expires_at)}) "
        f"and will be torn down.\n<{BASE}/actions/extend_ttl_devEnv/run?entity=dev-feat%2Fx|Extend it>")


@pytest.mark.parametrize("switch", ["global", "action"])
def test_ttl_warning_switched_off(slack, environment, switch):
    if switch == "global":
        notification_settings_update(actor=Actor.system(), values={"ttl_warning": False})
    else:
        Action.objects.filter(identifier="create_env").update(notifications={"ttlWarning": False})
    assert notify_ttl_warning(environment.pk, "expiresAt") is False
    assert slack.messages == []


def test_ttl_warning_for_a_vanished_entity_sends_nothing(slack, environment):
    assert notify_ttl_warning(environment.pk + 1000, "expiresAt") is False
    assert notify_ttl_warning(environment.pk, "otherTimer") is False
    assert slack.messages == []


def test_failed_teardown_tells_the_owner_and_the_platform_channel(slack, environment):
    notification_settings_update(actor=Actor.system(), values={"platform_channel": "#platform",
                                                               "ttl_warning": False, "run_ended": False})
    teardown = RunFactory(id="r_teardown", action=Action.objects.get(identifier="create_env"),
                                  blueprint_identifier="devEnv", status=RunStatus.FAILURE,
                                  status_label="terraform destroy failed", terminates_entity=environment)
    assert tasks.termination_failed_notify_task(environment.pk, teardown.id) is True
    text = ("Teardown of Dev environment feat x failed: terraform destroy failed. It stays in the catalog, marked as "
            f"failed to terminate.\n<{BASE}/runs/r_teardown/|View run r_teardown>")
    assert slack.messages == [{"channel": "U0DEV", "text": text}, {"channel": "#platform", "text": text}]
    NotificationSettings.objects.update(slack_enabled=False)
    assert notify_termination_failed(environment.pk, teardown.id) is False
    assert len(slack.messages) == 2


# --- the per-action key ---------------------------------------------------------------------------------

def test_action_notifications_key_round_trips_and_is_validated(users):
    data = {"identifier": "announce", "title": "Announce",
            "trigger": {"type": "self-service", "operation": "DAY-2", "blueprintIdentifier": "Service",
                        "userInputs": {"properties": {}}},
            "invocationMethod": {"type": "SLACK", "channel": "#deploys", "text": "{{ .entity.identifier }}"},
            "notifications": {"runEnded": False}}
    action = action_create(actor=Actor.system(), data=data)
    assert action.notifications == {"runEnded": False}
    from actions.serializers import action_json

    assert action_json(action)["notifications"] == {"runEnded": False}
    for bad, message in (({"runEnded": "no"}, "notifications.runEnded: must be true or false"),
                         ({"email": True}, "notifications: unknown keys ['email']"),
                         ([], "notifications: must be an object, got list")):
        with pytest.raises(ValidationFailed) as failed:
            action_create(actor=Actor.system(), data={**data, "identifier": "announce2", "notifications": bad})
        assert failed.value.message == message


# --- the settings service and admin ---------------------------------------------------------------------

def test_notification_settings_update_is_audited(db):
    row = notification_settings_update(actor=Actor.system(), values={"run_ended": False, "approvers_channel": " #ok "})
    assert NotificationSettings.objects.get() == row and row.approvers_channel == "#ok" and not row.run_ended
    (event,) = AuditEvent.objects.filter(verb=audit_choices.NOTIFICATION_SETTINGS_UPDATED)
    assert event.diff["before"] is None and event.diff["after"]["run_ended"] is False
    notification_settings_update(actor=Actor.system(), values={"run_ended": False})  # no change, no event
    assert AuditEvent.objects.filter(verb=audit_choices.NOTIFICATION_SETTINGS_UPDATED).count() == 1
    with pytest.raises(ValidationFailed, match="ttl_warning_hours: must be a whole number of hours"):
        notification_settings_update(actor=Actor.system(), values={"ttl_warning_hours": 0})
    with pytest.raises(ValidationFailed, match="nope: not a notification setting"):
        notification_settings_update(actor=Actor.system(), values={"nope": 1})


def test_notification_settings_admin_is_a_singleton_saved_through_the_service(admin_user, client):
    client.force_login(admin_user)
    url = "/admin/actions/notificationsettings/"
    assert client.get(url).status_code == 200
    form = {"slack_enabled": "on", "approval_waiting": "on", "run_ended": "on", "ttl_warning_hours": "12",
            "approvers_channel": "#approvers", "platform_channel": "#platform"}
    response = client.post(url + "add/", form)
    assert response.status_code == 302
    row = NotificationSettings.objects.get()
    assert (row.ttl_warning, row.ttl_warning_hours, row.approvers_channel) == (False, 12, "#approvers")
    (event,) = AuditEvent.objects.filter(verb=audit_choices.NOTIFICATION_SETTINGS_UPDATED)
    assert event.origin == "ADMIN" and event.actor == "admin@example.com"
    assert client.get(f"{url}{row.pk}/change/").status_code == 200
    assert client.get(url + "add/").status_code == 403  # one row only
    assert client.post(f"{url}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    response = client.post(f"{url}{row.pk}/change/", {**form, "ttl_warning_hours": "0"})
    assert response.status_code == 200 and "ttl_warning_hours" in response.context["adminform"].form.errors
    assert NotificationSettings.objects.get().ttl_warning_hours == 12
