"""run_request: who may run what, on which entity, with which inputs; run_as; the run it creates."""
import pytest
from django.db import transaction

from actions.choices import RunOrigin, RunStatus
from actions.models import Action, Run
from actions.serializers import run_json
from actions.services.runs import run_request
from audit import choices as audit_choices
from audit.models import AuditEvent
from catalog.models import Blueprint
from portal.errors import Forbidden, ValidationFailed
from portal.models import OutboxMessage
from tests.factories import ActionFactory
from tests.outbox import on_publish
from tests.support.runs import actor_of, grant

pytestmark = pytest.mark.django_db


def run_audits(verb=None):
    events = AuditEvent.objects.filter(resource_type="run")
    return list(events.filter(verb=verb) if verb else events)


def test_granted_member_requests_a_day2_run(users, django_capture_on_commit_callbacks, monkeypatch):
    action = ActionFactory(inputs={"branch": {"type": "string", "default": "main"}})
    grant("execute", action, users=[users["dev"]])
    queued = []
    from actions.tasks import run_dispatch_task

    on_publish(monkeypatch, {run_dispatch_task: lambda args: queued.append(args[0])})
    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal")

    run.refresh_from_db()
    assert run.id.startswith("r_") and len(run.id) == 18
    assert run.status == RunStatus.IN_PROGRESS
    assert run.properties == {"branch": "main"}  # defaults applied by inputs_clean
    assert run.entity.identifier == "portal" and run.entity_title == "portal"
    assert run.requested_by == users["dev"] and run.origin == RunOrigin.API
    assert run.started_at is not None and (run.timeout_at - run.started_at).total_seconds() == 3600
    assert queued == [run.id]  # dispatched on commit
    (event,) = run_audits()
    assert event.verb == audit_choices.RUN_CREATED and event.identifier == run.id and event.run_id == run.id
    assert event.actor == "dev@example.com"
    assert event.diff["before"] is None
    assert event.diff["after"]["status"] == "IN_PROGRESS" and event.diff["after"]["entity"] == "portal"


def test_the_run_and_its_dispatch_are_committed_or_rolled_back_together(users):
    action = ActionFactory()
    grant("execute", action, users=[users["dev"]])
    with pytest.raises(RuntimeError), transaction.atomic():
        run = run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal")
        assert list(OutboxMessage.objects.values_list("task", "args")) == [("actions.tasks.run_dispatch_task", [run.id])]
        raise RuntimeError("a later step of the request fails")
    assert not Run.objects.exists() and not OutboxMessage.objects.exists()


def test_run_timeout_comes_from_the_action(users):
    action = ActionFactory(run_timeout_seconds=120)
    grant("execute", action, users=[users["dev"]])
    run = run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal")
    assert (run.timeout_at - run.started_at).total_seconds() == 120


def test_approval_required_waits_and_is_not_dispatched(users, django_capture_on_commit_callbacks, monkeypatch):
    action = ActionFactory(required_approval={"type": "ANY"}, approval_timeout_seconds=3600)
    grant("execute", action, users=[users["dev"]])
    from portal import events

    announced = []
    announce = events.announce
    monkeypatch.setattr(events, "announce", lambda kind, event: announced.append(kind) or announce(kind, event))
    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal")
    assert run.status == RunStatus.WAITING_FOR_APPROVAL
    assert run.required_approval == {"type": "ANY"}
    assert run.started_at is None and run.timeout_at is None and run.dispatched_at is None
    assert (run.approval_deadline - run.created_at).total_seconds() == pytest.approx(3600, abs=1)
    assert announced == [events.RUN_CHANGED]  # the change is announced
    assert not OutboxMessage.objects.exists()  # nothing dispatched, no notification configured
    assert run_json(run)["waitingFor"] == "approval"


def test_approval_notification_webhook_is_queued_on_commit(users, django_capture_on_commit_callbacks, monkeypatch):
    action = ActionFactory(required_approval=True, approval_notification={"type": "webhook", "url": "http://127.0.0.1:9/n"})
    grant("execute", action, users=[users["dev"]])
    from actions.tasks import run_approval_notify_task

    sent = []
    on_publish(monkeypatch, {run_approval_notify_task: lambda args: sent.append(args[0])})
    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal")
    assert sent == [run.id]


def test_approval_notification_posts_the_run_json(users, httpserver, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    action = ActionFactory(required_approval=True,
                         approval_notification={"type": "webhook", "url": httpserver.url_for("/approvals")})
    grant("execute", action, users=[users["dev"]])
    run = run_request(actor=actor_of(users["dev"]), action=action, properties={"branch": "x"}, entity_identifier="portal")
    httpserver.expect_oneshot_request("/approvals", method="POST").respond_with_json({"ok": True})
    from actions.tasks import run_approval_notify_task

    assert run_approval_notify_task(run.id) is True
    (request, _), = httpserver.log
    body = request.get_json()
    assert body["run"]["id"] == run.id and body["run"]["status"] == "WAITING_FOR_APPROVAL"
    assert body["run"]["properties"] == {"branch": "x"}


def test_create_takes_no_entity(users):
    action = ActionFactory(identifier="create_env", operation="CREATE", blueprint="Env")
    grant("execute", action, users=[users["dev"]])
    with pytest.raises(ValidationFailed, match="^entity: action 'create_env' creates an entity"):
        run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal")
    run = run_request(actor=actor_of(users["dev"]), action=action, properties={"branch": "feature"})
    assert run.entity is None and run.entity_identifier == ""


def test_day2_needs_an_entity(users):
    action = ActionFactory()
    grant("execute", action, users=[users["dev"]])
    with pytest.raises(ValidationFailed, match="^entity: is required by DAY-2 action 'deploy'"):
        run_request(actor=actor_of(users["dev"]), action=action, properties={})
    with pytest.raises(ValidationFailed, match="^entity: entity 'nope' of blueprint 'Service' was not found"):
        run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="nope")
    assert not Run.objects.exists()


def test_entity_must_be_visible_to_the_requester(users):
    service = Blueprint.objects.get(identifier="Service")
    from guardian.models import GroupObjectPermission

    GroupObjectPermission.objects.filter(object_pk=str(service.pk)).delete()  # members no longer read services
    action = ActionFactory()
    grant("execute", action, users=[users["dev"]])
    with pytest.raises(ValidationFailed, match="^entity: entity 'portal' of blueprint 'Service' was not found"):
        run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal")


def test_entity_must_match_the_condition(users):
    condition = {"combinator": "and", "rules": [{"property": "tier", "operator": "=", "value": "1"}]}
    action = ActionFactory(condition=condition)
    grant("execute", action, users=[users["dev"]])
    with pytest.raises(ValidationFailed, match="^entity: entity 'checkout' does not match the condition"):
        run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="checkout")
    assert run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal").status == "IN_PROGRESS"


def test_ungranted_member_is_refused(users):
    action = ActionFactory()
    with pytest.raises(Forbidden, match="You may not run action 'deploy'"):
        run_request(actor=actor_of(users["other"]), action=action, properties={}, entity_identifier="portal")
    assert not Run.objects.exists() and not run_audits()


def test_owned_by_team_executes_only_on_owned_entities(users):
    action = ActionFactory(permission_settings={"ownedByTeam": {"execute": True}})
    run = run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal")
    assert run.requested_by == users["dev"]
    with pytest.raises(Forbidden):
        run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="checkout")


def test_inputs_are_validated(users):
    action = ActionFactory(inputs={"replicas": {"type": "number", "minimum": 1}}, required=["replicas"])
    grant("execute", action, users=[users["dev"]])
    with pytest.raises(ValidationFailed, match="properties.replicas"):
        run_request(actor=actor_of(users["dev"]), action=action, properties={"replicas": 0}, entity_identifier="portal")
    with pytest.raises(ValidationFailed, match="properties.replicas: is required"):
        run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal")


def test_unpublished_and_automation_actions_cannot_be_requested(users):
    unpublished = ActionFactory(publish=False)
    with pytest.raises(ValidationFailed, match="^action: 'deploy' is not published"):
        run_request(actor=actor_of(users["admin"]), action=unpublished, properties={}, entity_identifier="portal")
    automation = Action.objects.create(identifier="auto", title="Auto", trigger={"type": "automation", "event": {}},
                                       trigger_type="automation", invocation_method={"type": "WEBHOOK", "url": "http://x"})
    with pytest.raises(ValidationFailed, match="^action: 'auto' is an automation"):
        run_request(actor=actor_of(users["admin"]), action=automation, properties={})


def test_admin_runs_as_another_user(users):
    action = ActionFactory()
    grant("execute", action, users=[users["dev"]])
    run = run_request(actor=actor_of(users["admin"]), action=action, properties={}, entity_identifier="portal",
                      run_as="dev@example.com")
    assert run.requested_by == users["dev"] and run.run_as_by == "admin@example.com"
    (event,) = run_audits()
    assert event.actor == "admin@example.com"
    assert event.diff["after"]["createdBy"] == "dev@example.com" and event.diff["after"]["runAsBy"] == "admin@example.com"
    assert "run as dev@example.com by admin@example.com" in event.message


def test_run_as_is_checked_against_the_requester(users):
    action = ActionFactory()  # dev has no grant: the admin cannot lend their own permission
    with pytest.raises(Forbidden):
        run_request(actor=actor_of(users["admin"]), action=action, properties={}, entity_identifier="portal",
                    run_as="dev@example.com")


def test_only_admins_may_run_as(users):
    action = ActionFactory()
    grant("execute", action, users=[users["dev"]])
    with pytest.raises(Forbidden, match="^run_as: only admins"):
        run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal",
                    run_as="pay@example.com")
    with pytest.raises(ValidationFailed, match="^run_as: user 'ghost@example.com' does not exist"):
        run_request(actor=actor_of(users["admin"]), action=action, properties={}, entity_identifier="portal",
                    run_as="ghost@example.com")

