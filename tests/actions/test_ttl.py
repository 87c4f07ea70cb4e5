"""TTL policies: the created entity's timer, extending it (service and API), warnings, and teardown; and issue 4's
TTL 'done when' story (time is moved by setting Timer.expires_at rather than by sleeping)."""
import json
from datetime import datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from werkzeug.wrappers import Response

import actions.notifications
from actions.models import NotificationSettings, Run
from actions.services.actions import action_create
from actions.services.runs import run_request, run_update
from actions.services.timers import timers_sweep
from actions.services.ttl import (TTL_EXTENDED, TTL_STARTED, TTL_TERMINATED, TTL_TERMINATION_FAILED, TTL_WARNED,
                                  ttl_extend, ttl_warnings_send)
from actions.tasks import timers_sweep_task, ttl_warnings_task
from audit import choices as audit_choices
from audit.models import AuditEvent
from catalog.models import Entity, Timer
from catalog.services.entities import entity_write_one
from portal.actor import Actor
from portal.errors import Forbidden, ValidationFailed
from tests.factories import UserFactory
from tests.support.api import api_for
from tests.support.automations import automation, env_setup
from tests.support.runs import grant

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()
CREATE_ENV = {
    "identifier": "create_env", "title": "Create a developer environment",
    "trigger": {"type": "self-service", "operation": "CREATE", "blueprintIdentifier": "devEnv",
                "userInputs": {"properties": {"ttl": {"type": "string"}}}},
    "invocationMethod": {"type": "WEBHOOK", "url": "http://127.0.0.1:9/hook"},
    "ttl": {"property": "ttl", "default": "P5D", "maximum": "P10D", "extendBy": "P3D"},
}


def parse(value):
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
def notified(monkeypatch, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    calls = []
    monkeypatch.setattr(actions.notifications, "notify_ttl_warning", lambda *args: calls.append(("warning", *args)))
    monkeypatch.setattr(actions.notifications, "notify_termination_failed",
                        lambda *args: calls.append(("termination_failed", *args)))
    return calls


@pytest.fixture
def ttl_setup(db, dispatched):
    blueprint = env_setup()
    dev = UserFactory(email="dev@example.com")
    action = action_create(actor=SYSTEM, data=CREATE_ENV)
    grant("execute", action, users=[dev])
    return {"blueprint": blueprint, "dev": dev, "action": action}


def create_env(ttl_setup, capture, identifier="env-1", inputs=None):
    """A CREATE run, and its receiver reporting the entity with the run's id (which links it and starts the TTL)."""
    run = run_request(actor=Actor(user=ttl_setup["dev"], origin="API"), action=ttl_setup["action"], properties=inputs or {})
    with capture(execute=True):
        entity_write_one(actor=SYSTEM, blueprint=ttl_setup["blueprint"], data={"identifier": identifier}, run_id=run.id)
    return run, Entity.objects.select_related("blueprint").get(identifier=identifier)


def expires(entity):
    return Timer.objects.get(entity=entity, property="ttl").expires_at


# --- start ---------------------------------------------------------------------------------------------------

def test_the_created_entity_gets_the_default_ttl(ttl_setup, django_capture_on_commit_callbacks):
    before = timezone.now()
    run, entity = create_env(ttl_setup, django_capture_on_commit_callbacks)
    timer = Timer.objects.get(entity=entity, property="ttl")
    assert before + timedelta(days=5) - timedelta(seconds=1) <= timer.expires_at <= timezone.now() + timedelta(days=5)
    assert parse(entity.properties["ttl"]) == timer.expires_at
    (event,) = AuditEvent.objects.filter(verb=TTL_STARTED)
    assert event.run_id == run.id and event.identifier == "env-1"
    assert event.diff["after"]["expiresAt"] == entity.properties["ttl"]


@pytest.mark.parametrize("requested, days", [("PT1H", 1 / 24), ("P30D", 10), ("P9999999999D", 10)])
def test_the_requested_ttl_is_bounded_by_the_maximum(ttl_setup, django_capture_on_commit_callbacks, requested, days):
    _, entity = create_env(ttl_setup, django_capture_on_commit_callbacks, inputs={"ttl": requested})
    assert abs(expires(entity) - (timezone.now() + timedelta(days=days))) < timedelta(seconds=5)


@pytest.mark.parametrize("maximum, requested", [
    ("P10D", "not a duration"), ("P10D", "P0D"), ("P10D", "-P1D"), ("P10D", ""),
    (None, "P9999999999D"),  # more days than Python's timedelta holds
    (None, "P99999999D"),  # a timedelta, but the expiry would be past year 9999
    (None, "P365000D"),  # in Python's range, past the portal's last date (2999)
])
def test_a_ttl_the_run_could_not_start_is_refused_naming_properties_ttl(ttl_setup, maximum, requested):
    action = ttl_setup["action"]
    action.ttl = {**action.ttl, "maximum": maximum} if maximum else {"property": "ttl", "default": "P5D"}
    action.save()
    runs, events = Run.objects.count(), AuditEvent.objects.count()
    with pytest.raises(ValidationFailed) as refused:
        run_request(actor=Actor(user=ttl_setup["dev"], origin="API"), action=action, properties={"ttl": requested})
    assert refused.value.message.startswith("properties.ttl: ")
    assert Run.objects.count() == runs and AuditEvent.objects.count() == events


def test_a_later_write_by_the_run_does_not_restart_the_ttl(ttl_setup, django_capture_on_commit_callbacks):
    run, entity = create_env(ttl_setup, django_capture_on_commit_callbacks)
    Timer.objects.filter(entity=entity).update(expires_at=timezone.now() + timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        entity_write_one(actor=SYSTEM, blueprint=ttl_setup["blueprint"], data={"identifier": "env-1", "properties": {"tier": "x"}},
                         mode="upsert_merge", run_id=run.id)
    assert AuditEvent.objects.filter(verb=TTL_STARTED).count() == 1


def test_the_ttl_is_written_in_the_transaction_of_the_entity(ttl_setup, django_capture_on_commit_callbacks):
    """Linking the run and starting its TTL are part of the entity write: before anything runs on commit, the same
    connection sees the entity linked, its timer and the TTL's audit event."""
    with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
        run = run_request(actor=Actor(user=ttl_setup["dev"], origin="API"), action=ttl_setup["action"], properties={})
        entity_write_one(actor=SYSTEM, blueprint=ttl_setup["blueprint"], data={"identifier": "env-1"}, run_id=run.id)
        entity = Entity.objects.get(identifier="env-1")
        assert Run.objects.get(pk=run.id).result_entity_id == entity.pk
        timer = Timer.objects.get(entity=entity, property="ttl")
        assert parse(entity.properties["ttl"]) == timer.expires_at
        assert AuditEvent.objects.filter(verb=TTL_STARTED, run_id=run.id, identifier="env-1").count() == 1


def test_a_ttl_that_cannot_start_fails_the_entity_write_and_writes_nothing(ttl_setup):
    """The run asked for more than the maximum (capped, so accepted); the maximum was then removed from the action,
    so the TTL the run asked for would expire past the portal's last date. The receiver's entity write is refused
    with the TTL's envelope, and no entity exists without its TTL."""
    run = run_request(actor=Actor(user=ttl_setup["dev"], origin="API"), action=ttl_setup["action"], properties={"ttl": "P365000D"})
    ttl_setup["action"].ttl = {"property": "ttl", "default": "P5D"}
    ttl_setup["action"].save()
    platform = api_for(UserFactory(email="platform@example.com", admin=True))
    events = AuditEvent.objects.count()
    reported = platform.post(f"/v1/blueprints/devEnv/entities?run_id={run.id}", {"identifier": "env-1"}, format="json")
    assert reported.status_code == 422, reported.json()
    assert reported.json()["error"] == "invalid_request"
    assert reported.json()["message"].startswith("properties.ttl: 'P365000D' would expire after")
    assert not Entity.objects.filter(identifier="env-1").exists() and not Timer.objects.exists()
    assert Run.objects.get(pk=run.id).result_entity_id is None
    assert AuditEvent.objects.count() == events


# --- extend --------------------------------------------------------------------------------------------------

def test_extend_moves_the_expiry_by_the_step_then_caps_then_refuses(ttl_setup, django_capture_on_commit_callbacks):
    _, entity = create_env(ttl_setup, django_capture_on_commit_callbacks)
    start = expires(entity)
    owner = Actor(user=ttl_setup["dev"], origin="API")

    result = ttl_extend(actor=owner, entity=entity)
    assert expires(entity) == start + timedelta(days=3)
    assert result["expiresAt"] == Entity.objects.get(pk=entity.pk).properties["ttl"]
    (event,) = AuditEvent.objects.filter(verb=TTL_EXTENDED)
    assert event.actor == "dev@example.com" and event.identifier == "env-1"
    assert parse(event.diff["before"]["expiresAt"]) == start
    assert parse(event.diff["after"]["expiresAt"]) == start + timedelta(days=3)

    ttl_extend(actor=owner, entity=entity)  # 11 days would pass the 10-day maximum: capped
    limit = Entity.objects.get(pk=entity.pk).created_at + timedelta(days=10)
    assert abs(expires(entity) - limit) < timedelta(milliseconds=1)
    assert "capped at the maximum" in AuditEvent.objects.filter(verb=TTL_EXTENDED).order_by("id").last().message

    with pytest.raises(ValidationFailed) as refused:
        ttl_extend(actor=owner, entity=entity)
    assert refused.value.message.startswith("properties.ttl: the TTL is already at its maximum of P10D")
    assert AuditEvent.objects.filter(verb=TTL_EXTENDED).count() == 2


def test_an_extend_ttl_action(ttl_setup, django_capture_on_commit_callbacks):
    """A DAY-2 action with the EXTEND_TTL backend extends through ttl_extend: owners yes, strangers no."""
    from actions.backends import backend_dispatch

    extend = action_create(actor=SYSTEM, data={
        "identifier": "extend_ttl", "title": "Extend TTL",
        "trigger": {"type": "self-service", "operation": "DAY-2", "blueprintIdentifier": "devEnv",
                    "userInputs": {"properties": {}, "required": []}},
        "invocationMethod": {"type": "EXTEND_TTL"}})
    grant("execute", extend, users=[ttl_setup["dev"], UserFactory(email="stranger@example.com")])
    _, entity = create_env(ttl_setup, django_capture_on_commit_callbacks)
    start = expires(entity)
    run = run_request(actor=Actor(user=ttl_setup["dev"], origin="API"), action=extend, properties={},
                      entity_identifier=entity.identifier)
    backend_dispatch(run.id)
    run.refresh_from_db()
    assert run.status == "SUCCESS" and run.status_label.startswith("TTL extended to")
    assert expires(entity) == start + timedelta(days=3)
    from django.contrib.auth import get_user_model

    stranger = get_user_model().objects.get(email="stranger@example.com")
    refused = run_request(actor=Actor(user=stranger, origin="API"), action=extend, properties={},
                          entity_identifier=entity.identifier)
    backend_dispatch(refused.id)
    refused.refresh_from_db()
    assert refused.status == "FAILURE" and "may not extend" in refused.status_label
    assert expires(entity) == start + timedelta(days=3)


def test_only_the_owner_or_executors_may_extend(ttl_setup, django_capture_on_commit_callbacks):
    _, entity = create_env(ttl_setup, django_capture_on_commit_callbacks)
    stranger = UserFactory(email="stranger@example.com")
    with pytest.raises(Forbidden):
        ttl_extend(actor=Actor(user=stranger, origin="API"), entity=entity)
    grant("execute", ttl_setup["action"], users=[stranger])
    ttl_extend(actor=Actor(user=stranger, origin="API"), entity=entity)
    assert AuditEvent.objects.filter(verb=TTL_EXTENDED).count() == 1


def test_extend_before_expiry_keeps_the_timer_from_firing(ttl_setup, django_capture_on_commit_callbacks):
    _, entity = create_env(ttl_setup, django_capture_on_commit_callbacks)
    automation("teardown", {"type": "TIMER_PROPERTY_EXPIRED", "blueprintIdentifier": "devEnv", "propertyIdentifier": "ttl"})
    Timer.objects.filter(entity=entity).update(expires_at=timezone.now() - timedelta(seconds=1))  # due, not yet swept
    ttl_extend(actor=Actor(user=ttl_setup["dev"], origin="API"), entity=entity)
    assert expires(entity) > timezone.now() + timedelta(days=2)
    assert timers_sweep() == 0
    assert not Run.objects.filter(action__identifier="teardown").exists()


def test_extend_api(ttl_setup, django_capture_on_commit_callbacks):
    _, entity = create_env(ttl_setup, django_capture_on_commit_callbacks)
    api = api_for(ttl_setup["dev"])
    response = api.post("/v1/blueprints/devEnv/entities/env-1/ttl/extend")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["ok"] is True and body["entity"]["identifier"] == "env-1"
    assert body["ttl"]["property"] == "ttl" and body["ttl"]["extendBy"] == "P3D"
    assert body["entity"]["properties"]["ttl"] == body["ttl"]["expiresAt"]
    api.post("/v1/blueprints/devEnv/entities/env-1/ttl/extend")
    refused = api.post("/v1/blueprints/devEnv/entities/env-1/ttl/extend")
    assert refused.status_code == 422
    assert refused.json()["ok"] is False and "maximum of P10D" in refused.json()["message"]
    missing = api.post("/v1/blueprints/devEnv/entities/nope/ttl/extend")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    stranger = api_for(UserFactory(email="stranger@example.com")).post("/v1/blueprints/devEnv/entities/env-1/ttl/extend")
    assert stranger.status_code == 403


# --- warn ----------------------------------------------------------------------------------------------------

def test_owners_are_warned_once_per_expiry(ttl_setup, notified, django_capture_on_commit_callbacks):
    _, entity = create_env(ttl_setup, django_capture_on_commit_callbacks)
    NotificationSettings.objects.create(ttl_warning_hours=24)
    assert ttl_warnings_send() == 0  # five days away
    Timer.objects.filter(entity=entity).update(expires_at=timezone.now() + timedelta(hours=2))
    with django_capture_on_commit_callbacks(execute=True):
        assert ttl_warnings_send() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert ttl_warnings_send() == 0
    assert notified == [("warning", entity.pk, "ttl")]
    assert Timer.objects.get(entity=entity).warned_at is not None
    (event,) = AuditEvent.objects.filter(verb=TTL_WARNED)
    assert event.identifier == "env-1" and event.diff["after"]["property"] == "ttl"

    ttl_extend(actor=SYSTEM, entity=entity)  # a new expiry is warned about afresh, when it comes near
    assert Timer.objects.get(entity=entity).warned_at is None


# --- terminate -----------------------------------------------------------------------------------------------

def expire_and_sweep(entity):
    Timer.objects.filter(entity=entity).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert timers_sweep() == 1
    return Run.objects.get(action__identifier="teardown")


def test_successful_teardown_removes_the_entity(ttl_setup, notified, django_capture_on_commit_callbacks):
    _, entity = create_env(ttl_setup, django_capture_on_commit_callbacks)
    automation("teardown", {"type": "TIMER_PROPERTY_EXPIRED", "blueprintIdentifier": "devEnv", "propertyIdentifier": "ttl"})
    teardown = expire_and_sweep(entity)
    assert teardown.terminates_entity_id == entity.pk
    with django_capture_on_commit_callbacks(execute=True):
        run_update(actor=SYSTEM, run=teardown, status="SUCCESS")
    assert not Entity.objects.filter(pk=entity.pk).exists()
    (event,) = AuditEvent.objects.filter(verb=TTL_TERMINATED)
    assert event.run_id == teardown.id and event.status == "SUCCESS" and event.identifier == "env-1"
    assert AuditEvent.objects.filter(verb=audit_choices.ENTITY_DELETED, identifier="env-1").count() == 1
    assert notified == []


def test_failed_teardown_keeps_the_entity_marked(ttl_setup, notified, django_capture_on_commit_callbacks):
    _, entity = create_env(ttl_setup, django_capture_on_commit_callbacks)
    automation("teardown", {"type": "TIMER_PROPERTY_EXPIRED", "blueprintIdentifier": "devEnv", "propertyIdentifier": "ttl"})
    teardown = expire_and_sweep(entity)
    with django_capture_on_commit_callbacks(execute=True):
        run_update(actor=SYSTEM, run=teardown, status="FAILURE", status_label="terraform destroy failed")
    assert Entity.objects.filter(pk=entity.pk).exists()
    assert Timer.objects.get(entity=entity).termination_failed_at is not None
    (event,) = AuditEvent.objects.filter(verb=TTL_TERMINATION_FAILED)
    assert event.status == "FAILURE" and event.run_id == teardown.id
    assert "terraform destroy failed" in event.message
    assert notified == [("termination_failed", entity.pk, teardown.id)]
    assert not AuditEvent.objects.filter(verb=TTL_TERMINATED).exists()


def test_an_expiry_nobody_tears_down_is_marked(ttl_setup, django_capture_on_commit_callbacks):
    _, entity = create_env(ttl_setup, django_capture_on_commit_callbacks)
    Timer.objects.filter(entity=entity).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert timers_sweep() == 1
    assert Entity.objects.filter(pk=entity.pk).exists()
    assert Timer.objects.get(entity=entity).termination_failed_at is not None
    (event,) = AuditEvent.objects.filter(verb=TTL_TERMINATION_FAILED)
    assert "no TIMER_PROPERTY_EXPIRED automation" in event.message


# --- the "done when" story -----------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_an_environment_is_warned_extended_and_torn_down(httpserver, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.SLACK_BOT_TOKEN = "xoxb-test"
    settings.SLACK_API_URL = httpserver.url_for("/slack/")
    settings.SLACK_DEFAULT_CHANNEL = "#platform"
    platform = api_for(UserFactory(email="platform@example.com", admin=True))
    developer_user = UserFactory(email="dev@example.com")
    developer = api_for(developer_user)

    hooks, slack = [], []

    def hook(request):
        hooks.append((request.path, json.loads(request.get_data())))
        return Response("{}", status=200, content_type="application/json")

    def slack_api(request):
        method = request.path.rsplit("/", 1)[-1]
        form = request.form.to_dict() or json.loads(request.get_data() or b"{}")
        slack.append((method, form))
        body = {"ok": True, "user": {"id": "U_DEV"}} if method == "users.lookupByEmail" else {"ok": True, "ts": "1.0"}
        return Response(json.dumps(body), status=200, content_type="application/json")

    httpserver.expect_request("/hooks/create", method="POST").respond_with_handler(hook)
    httpserver.expect_request("/hooks/teardown", method="POST").respond_with_handler(hook)
    for method in ("chat.postMessage", "users.lookupByEmail"):
        httpserver.expect_request(f"/slack/{method}").respond_with_handler(slack_api)

    assert platform.post("/v1/blueprints", {
        "identifier": "devEnv", "title": "Developer environment",
        "schema": {"properties": {"branch": {"type": "string"}, "ttl": {"type": "string", "format": "timer"}}},
    }, format="json").status_code == 201
    created = platform.post("/v1/actions", {
        "identifier": "create_dev_env", "title": "Spin up a developer environment",
        "trigger": {"type": "self-service", "operation": "CREATE", "blueprintIdentifier": "devEnv",
                    "userInputs": {"properties": {"branch": {"type": "string"}}, "required": ["branch"]}},
        "invocationMethod": {"type": "WEBHOOK", "url": httpserver.url_for("/hooks/create"),
                             "body": {"runId": "{{ .run.id }}", "branch": "{{ .inputs.branch }}"}},
        "ttl": {"property": "ttl", "default": "P5D", "maximum": "P10D", "extendBy": "P3D"},
    }, format="json")
    assert created.status_code == 201, created.json()
    teardown = platform.post("/v1/actions", {
        "identifier": "teardown_dev_env", "title": "Tear down an expired environment",
        "trigger": {"type": "automation",
                    "event": {"type": "TIMER_PROPERTY_EXPIRED", "blueprintIdentifier": "devEnv", "propertyIdentifier": "ttl"}},
        "invocationMethod": {"type": "WEBHOOK", "url": httpserver.url_for("/hooks/teardown"),
                             "body": {"runId": "{{ .run.id }}", "environment": "{{ .event.context.entityIdentifier }}"}},
    }, format="json")
    assert teardown.status_code == 201, teardown.json()
    assert platform.patch("/v1/actions/create_dev_env/permissions", {"execute": {"users": ["dev@example.com"]}},
                          format="json").status_code == 200

    # 1. The developer asks; the receiver builds the environment and reports the entity with the run's id.
    run = developer.post("/v1/actions/create_dev_env/runs", {"properties": {"branch": "feature-x"}}, format="json").json()["run"]
    assert hooks == [("/hooks/create", {"runId": run["id"], "branch": "feature-x"})]
    reported = platform.post(f"/v1/blueprints/devEnv/entities?run_id={run['id']}",
                             {"identifier": "feature-x", "properties": {"branch": "feature-x"}}, format="json")
    assert reported.status_code == 201, reported.json()
    assert platform.patch(f"/v1/actions/runs/{run['id']}", {"status": "SUCCESS"}, format="json").status_code == 200
    entity = Entity.objects.get(identifier="feature-x")
    timer = Timer.objects.get(entity=entity, property="ttl")
    assert abs(timer.expires_at - (timezone.now() + timedelta(days=5))) < timedelta(seconds=10)

    # 2. Four days and a bit later: the owner is warned, once.
    Timer.objects.filter(pk=timer.pk).update(expires_at=timezone.now() + timedelta(hours=3))
    assert ttl_warnings_task() == 1
    assert ttl_warnings_task() == 0
    warnings = [form for method, form in slack if method == "chat.postMessage" and "expires" in form.get("text", "")]
    assert len(warnings) == 1 and warnings[0]["channel"] == "U_DEV"

    # 3. The developer extends it once (by 3 days).
    extended = developer.post("/v1/blueprints/devEnv/entities/feature-x/ttl/extend")
    assert extended.status_code == 200, extended.json()
    timer.refresh_from_db()
    assert timer.warned_at is None and timer.expires_at > timezone.now() + timedelta(days=3)
    assert timers_sweep_task() == 0  # not due

    # 4. It expires: the sweeper fires the teardown automation, whose receiver reports success.
    Timer.objects.filter(pk=timer.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert timers_sweep_task() == 1
    assert timers_sweep_task() == 0
    teardown_run = Run.objects.get(action__identifier="teardown_dev_env")
    assert teardown_run.terminates_entity_id == entity.pk
    assert hooks[-1] == ("/hooks/teardown", {"runId": teardown_run.id, "environment": "feature-x"})
    assert Entity.objects.filter(pk=entity.pk).exists()  # not before the teardown succeeded
    done = platform.patch(f"/v1/actions/runs/{teardown_run.id}", {"status": "SUCCESS"}, format="json")
    assert done.status_code == 200, done.json()
    assert not Entity.objects.filter(identifier="feature-x").exists()

    verbs = list(AuditEvent.objects.filter(identifier="feature-x").order_by("id").values_list("verb", flat=True))
    for verb in (audit_choices.ENTITY_CREATED, TTL_STARTED, TTL_WARNED, TTL_EXTENDED, TTL_TERMINATED,
                 audit_choices.ENTITY_DELETED):
        assert verbs.count(verb) == 1, (verb, verbs)
    assert AuditEvent.objects.filter(verb=audit_choices.RUN_CREATED, run_id=teardown_run.id).count() == 1
