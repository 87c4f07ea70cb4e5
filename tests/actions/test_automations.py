"""Automations: entity and run events (with and without jq conditions), the runs they create, and the loop guard."""
import pytest
from django.db import transaction

from actions.choices import RunOrigin, RunStatus
from actions.models import Run
from actions.services.actions import action_update
from actions.services.automations import (AUTOMATION_CONDITION_FAILED, AUTOMATION_REFUSED, automation_run_create,
                                          automations_fire)
from actions.services.runs import run_request, run_update
from actions.tasks import automations_fire_task
from audit import choices as audit_choices
from audit.models import AuditEvent
from catalog.models import Entity
from catalog.services.entities import PATCH, entities_delete, entity_write_one
from portal.actor import Actor
from portal.models import OutboxMessage
from tests.factories import ActionFactory, BlueprintFactory, UserFactory
from tests.outbox import on_publish
from tests.support.automations import automation, env_setup
from tests.support.runs import grant

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system()


@pytest.fixture
def blueprint(db):
    return env_setup()


def write(blueprint, identifier, properties, **options):
    return entity_write_one(actor=SYSTEM, blueprint=blueprint, data={"identifier": identifier, "properties": properties},
                            mode=PATCH if Entity.objects.filter(identifier=identifier).exists() else "create", **options)


def automation_runs(identifier):
    return list(Run.objects.filter(action__identifier=identifier).order_by("created_at", "id"))


# --- entity events -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("event_type, fires_on", [
    ("ENTITY_CREATED", ["CREATE"]),
    ("ENTITY_UPDATED", ["UPDATE"]),
    ("ENTITY_DELETED", ["DELETE"]),
    ("ANY_ENTITY_CHANGE", ["CREATE", "UPDATE", "DELETE"]),
])
def test_entity_events_fire_their_automations(blueprint, eager, dispatched, django_capture_on_commit_callbacks, event_type,
                                              fires_on):
    automation("on_env", {"type": event_type, "blueprintIdentifier": "devEnv"})
    with django_capture_on_commit_callbacks(execute=True):
        write(blueprint, "env-1", {"tier": "dev"})
    with django_capture_on_commit_callbacks(execute=True):
        write(blueprint, "env-1", {"tier": "prod"})
    with django_capture_on_commit_callbacks(execute=True):
        entities_delete(actor=SYSTEM, blueprint=blueprint, identifiers=["env-1"])

    runs = automation_runs("on_env")
    assert [run.trigger_event["action"] for run in runs] == fires_on
    assert dispatched == [run.id for run in runs]
    run = runs[0]
    assert run.origin == RunOrigin.AUTOMATION and run.status == RunStatus.IN_PROGRESS
    assert run.requested_by is None and run.automation_depth == 0 and run.terminates_entity is None
    assert run.entity_identifier == "env-1" and run.blueprint_identifier == "devEnv"
    event = run.trigger_event
    assert event["resourceType"] == "entity"
    assert event["context"] == {"blueprintIdentifier": "devEnv", "entityIdentifier": "env-1", "runId": None}
    assert event["trigger"]["by"] == {"userId": "system"} and event["trigger"]["origin"] == "SYSTEM"
    assert event["trigger"]["at"].endswith("Z")
    assert set(event["diff"]) == {"before", "after"}
    created = AuditEvent.objects.filter(run_id=run.id, verb=audit_choices.RUN_CREATED)
    assert created.count() == 1
    assert created.get().diff["after"]["automationDepth"] == 0


def test_entity_update_event_carries_the_diff(blueprint, eager, dispatched, django_capture_on_commit_callbacks):
    write(blueprint, "env-1", {"tier": "dev"})
    automation("on_update", {"type": "ENTITY_UPDATED", "blueprintIdentifier": "devEnv"})
    with django_capture_on_commit_callbacks(execute=True):
        write(blueprint, "env-1", {"tier": "prod"})
    (run,) = automation_runs("on_update")
    assert run.trigger_event["diff"]["before"]["properties"] == {"tier": "dev"}
    assert run.trigger_event["diff"]["after"]["properties"] == {"tier": "prod"}
    assert run.entity.identifier == "env-1"


def test_other_blueprints_and_unpublished_automations_do_not_fire(blueprint, eager, dispatched, monkeypatch,
                                                                  django_capture_on_commit_callbacks):
    BlueprintFactory(identifier="other", title="Other", schema={"properties": {}})
    automation("on_other", {"type": "ANY_ENTITY_CHANGE", "blueprintIdentifier": "other"})
    off = automation("off", {"type": "ANY_ENTITY_CHANGE", "blueprintIdentifier": "devEnv"})
    off.publish = False
    off.save()
    queued = []
    on_publish(monkeypatch, {automations_fire_task: lambda args: queued.append(args[0])})
    with django_capture_on_commit_callbacks(execute=True):
        write(blueprint, "env-1", {"tier": "dev"})
    assert queued == []  # nobody listens: nothing is even queued
    assert Run.objects.count() == 0


def test_events_are_queued_to_celery_not_fired_inline(blueprint, dispatched, monkeypatch, django_capture_on_commit_callbacks):
    automation("on_create", {"type": "ENTITY_CREATED", "blueprintIdentifier": "devEnv"})
    queued = []
    on_publish(monkeypatch, {automations_fire_task: lambda args: queued.append(args[0])})
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        write(blueprint, "env-1", {"tier": "dev"})
    assert queued == [] and Run.objects.count() == 0  # nothing before commit
    for callback in callbacks:
        callback()
    assert [e["context"]["entityIdentifier"] for e in queued] == ["env-1"]
    assert Run.objects.count() == 0  # the request only queued it
    automations_fire_task(queued[0])
    assert len(automation_runs("on_create")) == 1


def test_the_event_is_an_outbox_row_of_the_writers_transaction(blueprint, dispatched):
    automation("on_create", {"type": "ENTITY_CREATED", "blueprintIdentifier": "devEnv"})
    def queued():
        return OutboxMessage.objects.filter(task=automations_fire_task.name)

    with pytest.raises(RuntimeError), transaction.atomic():
        write(blueprint, "env-1", {"tier": "dev"})
        (message,) = queued()  # written with the entity, before any commit
        assert message.args[0]["context"]["entityIdentifier"] == "env-1" and message.attempts == 0
        raise RuntimeError("the request fails after the write")
    assert not queued().exists() and not Entity.objects.filter(identifier="env-1").exists()  # gone together
    write(blueprint, "env-2", {"tier": "dev"})
    assert [m.args[0]["context"]["entityIdentifier"] for m in queued()] == ["env-2"]


# --- conditions ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("combinator, expressions, fires", [
    ("and", ['.diff.after.properties.tier == "prod"'], ["prod-1"]),
    ("and", ['.diff.after.properties.tier == "prod"', '.context.entityIdentifier | startswith("x")'], []),
    ("or", ['.diff.after.properties.tier == "prod"', '.context.entityIdentifier | startswith("dev")'], ["dev-1", "prod-1"]),
    ("and", [".diff.after.properties.missing"], []),  # null is falsy
])
def test_conditions(blueprint, eager, dispatched, django_capture_on_commit_callbacks, combinator, expressions, fires):
    automation("prod_only", {"type": "ENTITY_CREATED", "blueprintIdentifier": "devEnv"},
               condition={"type": "JQ", "expressions": expressions, "combinator": combinator})
    with django_capture_on_commit_callbacks(execute=True):
        write(blueprint, "dev-1", {"tier": "dev"})
        write(blueprint, "prod-1", {"tier": "prod"})
    assert [run.entity_identifier for run in automation_runs("prod_only")] == fires


def test_delivering_an_event_whose_condition_does_not_hold_reads_no_entity(blueprint, dispatched,
                                                                           django_capture_on_commit_callbacks):
    """Most events fire nothing (the starter's lock-change automations, on every CI report): the worker's delivery
    of one is its claim, the lookup of who listens and its done mark; the entity is read for a run only."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.outbox import outbox_deliver

    # outside portal/jq_fast.py's subset: the writer cannot tell, so both events are queued (see below)
    automation("prod_only", {"type": "ENTITY_CREATED", "blueprintIdentifier": "devEnv"},
               condition={"type": "JQ", "expressions": ['(.diff.after.properties.tier | ascii_downcase) == "prod"'],
                          "combinator": "and"})
    write(blueprint, "dev-1", {"tier": "dev"})
    write(blueprint, "prod-1", {"tier": "prod"})
    dev, prod = OutboxMessage.objects.filter(task=automations_fire_task.name).order_by("id")
    with CaptureQueriesContext(connection) as captured:
        assert outbox_deliver(message_id=dev.pk) is True
    sql = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith("SET plan_cache_mode")]
    assert not any("catalog_entity" in statement for statement in sql) and len(sql) == 3, sql
    assert automation_runs("prod_only") == []
    with django_capture_on_commit_callbacks(execute=False):
        assert outbox_deliver(message_id=prod.pk) is True
    assert [run.entity.identifier for run in automation_runs("prod_only")] == ["prod-1"]


PROD_ONLY = {"type": "JQ", "expressions": ['.diff.after.properties.tier == "prod"'], "combinator": "and"}


def queued_events():
    return [m.args[0]["context"]["entityIdentifier"]
            for m in OutboxMessage.objects.filter(task=automations_fire_task.name).order_by("id")]


def test_a_change_whose_conditions_fail_in_the_writer_is_not_queued(blueprint, eager, dispatched,
                                                                    django_capture_on_commit_callbacks):
    """The writer evaluates the listeners' conditions when portal/jq_fast.py can (a CI report's running service and
    the starter's lock-change automations): an event that would fire nothing is not queued at all."""
    automation("prod_only", {"type": "ENTITY_CREATED", "blueprintIdentifier": "devEnv"}, condition=PROD_ONLY)
    automation("prod_too", {"type": "ANY_ENTITY_CHANGE", "blueprintIdentifier": "devEnv"},
               condition={"type": "JQ", "expressions": ['.diff.after.properties.tier == "prod"',
                                                        ".diff.after.properties.n > 1"], "combinator": "or"})
    with django_capture_on_commit_callbacks(execute=True):
        write(blueprint, "dev-1", {"tier": "dev"})
        write(blueprint, "prod-1", {"tier": "prod"})
        write(blueprint, "big-1", {"tier": "dev", "n": 2})
    assert queued_events() == ["prod-1", "big-1"]
    assert [run.entity_identifier for run in automation_runs("prod_only")] == ["prod-1"]
    assert [run.entity_identifier for run in automation_runs("prod_too")] == ["prod-1", "big-1"]


@pytest.mark.parametrize("expressions, combinator, audited", [
    (['(.diff.after.properties.tier | ascii_downcase) == "prod"'], "and", False),  # outside the subset
    (['.diff.after.properties.tier + 1 == 2'], "and", True),  # jq fails (string + number): the worker audits it
    (['.diff.after.properties.tier == "prod"', '(.context.entityIdentifier | length) > 99'], "or", False),
    (['.diff.after.properties.tier == "dev"', '(.context.entityIdentifier | length) > 99'], "and", False),
])
def test_a_condition_only_the_worker_can_judge_is_queued(blueprint, eager, dispatched,
                                                         django_capture_on_commit_callbacks, expressions, combinator,
                                                         audited):
    automation("judged", {"type": "ENTITY_CREATED", "blueprintIdentifier": "devEnv"},
               condition={"type": "JQ", "expressions": expressions, "combinator": combinator})
    with django_capture_on_commit_callbacks(execute=True):
        write(blueprint, "dev-1", {"tier": "dev"})
    assert queued_events() == ["dev-1"] and automation_runs("judged") == []
    assert AuditEvent.objects.filter(verb=AUTOMATION_CONDITION_FAILED).exists() is audited


def test_a_condition_of_another_shape_is_left_to_the_worker(blueprint, dispatched):
    """A trigger stored behind the services' back, with a condition the schema would refuse: the write is not failed
    by it, and the event is queued as before."""
    from actions.models import Action

    action = automation("odd", {"type": "ENTITY_CREATED", "blueprintIdentifier": "devEnv"}, condition=PROD_ONLY)
    for condition in ({"type": "JQ", "expressions": 7}, {"type": "JQ"}, ["not", "an", "object"]):
        Action.objects.filter(pk=action.pk).update(trigger={**action.trigger, "condition": condition})
        write(blueprint, f"env-{len(queued_events())}", {"tier": "dev"})
    assert queued_events() == ["env-0", "env-1", "env-2"]


def test_a_change_made_by_a_run_is_queued_whatever_its_condition(self_service, dispatched):
    """Its event is one deeper than the run: the worker may have to refuse and audit it (the loop guard), so the
    writer never drops it."""
    dev, action = self_service
    automation("prod_only", {"type": "ENTITY_UPDATED", "blueprintIdentifier": "devEnv"}, condition=PROD_ONLY)
    run = run_request(actor=Actor(user=dev, origin="API"), action=action, properties={}, entity_identifier="env-1")
    write(Entity.objects.get(identifier="env-1").blueprint, "env-1", {"tier": "test"}, run_id=run.id)
    write(Entity.objects.get(identifier="env-1").blueprint, "env-1", {"tier": "qa"})
    (event,) = [m.args[0] for m in OutboxMessage.objects.filter(task=automations_fire_task.name)]
    assert event["context"]["runId"] == run.id


def test_failing_condition_does_not_fire_and_is_audited(blueprint, eager, dispatched, django_capture_on_commit_callbacks):
    automation("broken", {"type": "ENTITY_CREATED", "blueprintIdentifier": "devEnv"},
               condition={"type": "JQ", "expressions": ['.diff.after.properties.tier | error("boom")'], "combinator": "and"})
    with django_capture_on_commit_callbacks(execute=True):
        write(blueprint, "env-1", {"tier": "dev"})
    assert automation_runs("broken") == []
    (event,) = AuditEvent.objects.filter(verb=AUTOMATION_CONDITION_FAILED)
    assert event.status == "FAILURE" and event.identifier == "broken"
    assert event.message.startswith("trigger.condition:") and "boom" in event.message


# --- run events ----------------------------------------------------------------------------------------------

@pytest.fixture
def self_service(blueprint):
    dev = UserFactory(email="dev@example.com")
    action = ActionFactory(identifier="deploy_env", blueprint="devEnv", inputs={})
    grant("execute", action, users=[dev])
    write(blueprint, "env-1", {"tier": "dev"})
    return dev, action


@pytest.mark.parametrize("event_type, fires_on", [
    ("RUN_CREATED", ["CREATE"]),
    ("RUN_UPDATED", ["UPDATE"]),
    ("ANY_RUN_CHANGE", ["CREATE", "UPDATE"]),
])
def test_run_events_fire_their_automations(self_service, eager, dispatched, django_capture_on_commit_callbacks, event_type,
                                           fires_on):
    dev, action = self_service
    automation("on_deploy", {"type": event_type, "actionIdentifier": "deploy_env"})
    with django_capture_on_commit_callbacks(execute=True):
        run = run_request(actor=Actor(user=dev, origin="API"), action=action, properties={}, entity_identifier="env-1")
    with django_capture_on_commit_callbacks(execute=True):
        run_update(actor=SYSTEM, run=run, status="SUCCESS")
    runs = automation_runs("on_deploy")
    assert [r.trigger_event["action"] for r in runs] == fires_on
    fired = runs[-1]
    assert fired.automation_depth == 1  # one deeper than the run that caused it
    event = fired.trigger_event
    assert event["resourceType"] == "run"
    assert event["context"]["runId"] == run.id and event["context"]["actionIdentifier"] == "deploy_env"
    assert event["diff"]["after"]["id"] == run.id
    if event_type == "RUN_UPDATED":
        assert event["diff"]["before"]["status"] == "IN_PROGRESS" and event["diff"]["after"]["status"] == "SUCCESS"


def test_run_event_condition(self_service, eager, dispatched, django_capture_on_commit_callbacks):
    dev, action = self_service
    automation("on_failure", {"type": "RUN_UPDATED", "actionIdentifier": "deploy_env"},
               condition={"type": "JQ", "expressions": ['.diff.after.status == "FAILURE"'], "combinator": "and"})
    for status in ("SUCCESS", "FAILURE"):
        with django_capture_on_commit_callbacks(execute=True):
            run = run_request(actor=Actor(user=dev, origin="API"), action=action, properties={}, entity_identifier="env-1")
            run_update(actor=SYSTEM, run=run, status=status)
    (fired,) = automation_runs("on_failure")
    assert fired.trigger_event["diff"]["after"]["status"] == "FAILURE"


# --- loops ---------------------------------------------------------------------------------------------------

def test_an_automation_never_fires_on_its_own_runs(blueprint, eager, dispatched, django_capture_on_commit_callbacks):
    loop = automation("loop", {"type": "ENTITY_CREATED", "blueprintIdentifier": "devEnv"})
    loop = action_update(actor=SYSTEM, action=loop, data={
        "title": "loop", "trigger": {"type": "automation", "event": {"type": "ANY_RUN_CHANGE", "actionIdentifier": "loop"}},
        "invocationMethod": {"type": "WEBHOOK", "url": "http://127.0.0.1:9/hook"}})
    event = {"action": "CREATE", "resourceType": "entity", "trigger": {}, "context": {"blueprintIdentifier": "devEnv"},
             "diff": {}}
    with django_capture_on_commit_callbacks(execute=True):
        first = automation_run_create(event=event, action=loop, depth=0)
    with django_capture_on_commit_callbacks(execute=True):
        run_update(actor=SYSTEM, run=first, status="SUCCESS")
    assert [r.id for r in automation_runs("loop")] == [first.id]
    refusals = AuditEvent.objects.filter(verb=AUTOMATION_REFUSED)
    assert refusals.count() == 2  # its creation and its update, each refused
    assert all(e.status == "FAILURE" and "its own runs" in e.message for e in refusals)


def test_a_loop_through_the_catalog_is_cut_at_the_maximum_depth(blueprint, eager, settings,
                                                               django_capture_on_commit_callbacks):
    """An automation that writes the entity whose change fires it: each round is one deeper; depth 4 is refused."""
    settings.AUTOMATION_MAX_DEPTH = 3
    automation("bump", {"type": "ANY_ENTITY_CHANGE", "blueprintIdentifier": "devEnv"}, invocation={
        "type": "UPSERT_ENTITY", "blueprintIdentifier": "devEnv",
        "mapping": {"identifier": "{{ .event.context.entityIdentifier }}",
                    "properties": {"n": "{{ (.event.diff.after.properties.n // 0) + 1 }}"}}})
    with django_capture_on_commit_callbacks(execute=True):
        write(blueprint, "env-1", {"tier": "dev"})
    runs = automation_runs("bump")
    assert [r.automation_depth for r in runs] == [0, 1, 2, 3]
    assert all(r.status == RunStatus.SUCCESS for r in runs)
    assert Entity.objects.get(identifier="env-1").properties["n"] == 4
    (refusal,) = AuditEvent.objects.filter(verb=AUTOMATION_REFUSED)
    assert refusal.status == "FAILURE" and refusal.context["depth"] == 4 and refusal.run_id == runs[-1].id
    assert "AUTOMATION_MAX_DEPTH=3" in refusal.message


def test_depth_follows_the_run_that_wrote_the_entity(self_service, dispatched):
    dev, action = self_service
    automation("on_update", {"type": "ENTITY_UPDATED", "blueprintIdentifier": "devEnv"})
    run = run_request(actor=Actor(user=dev, origin="API"), action=action, properties={}, entity_identifier="env-1")
    Run.objects.filter(pk=run.pk).update(automation_depth=2)
    event = {"action": "UPDATE", "resourceType": "entity", "trigger": {},
             "context": {"blueprintIdentifier": "devEnv", "entityIdentifier": "env-1", "runId": run.id}, "diff": {}}
    (fired,) = automations_fire(event=event)
    assert fired.automation_depth == 3
    Run.objects.filter(pk=run.pk).update(automation_depth=3)
    assert automations_fire(event=event) == []
    assert AuditEvent.objects.filter(verb=AUTOMATION_REFUSED).count() == 1


def test_the_automations_of_an_entity_event_are_read_whole_in_one_prepared_statement(blueprint):
    """automations_for_event's entity case: the published automations of the event's blueprint listening for its type,
    in identifier order, each the Action the ORM reads (every field, JSON ones parsed)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from actions.models import Action
    from actions.services.automations import automations_for_event

    automation("z_any", {"type": "ANY_ENTITY_CHANGE", "blueprintIdentifier": "devEnv"},
               condition={"type": "JQ", "expressions": [".diff.after != null"], "combinator": "and"})
    automation("a_updated", {"type": "ENTITY_UPDATED", "blueprintIdentifier": "devEnv"})
    automation("created_only", {"type": "ENTITY_CREATED", "blueprintIdentifier": "devEnv"})
    off = automation("off", {"type": "ANY_ENTITY_CHANGE", "blueprintIdentifier": "devEnv"})
    off.publish = False
    off.save()
    event = {"action": "UPDATE", "resourceType": "entity", "context": {"blueprintIdentifier": "devEnv"}}
    automations_for_event(event)  # prepared on this connection
    with CaptureQueriesContext(connection) as captured:
        found = automations_for_event(event)
    assert len(captured.captured_queries) == 1
    assert [a.identifier for a in found] == ["a_updated", "z_any"]
    for action in found:
        stored = Action.objects.get(pk=action.pk)
        assert {f.attname: getattr(action, f.attname) for f in Action._meta.concrete_fields} == \
            {f.attname: getattr(stored, f.attname) for f in Action._meta.concrete_fields}
    assert found[1].trigger["condition"]["expressions"] == [".diff.after != null"]
    assert automations_for_event({**event, "context": {"blueprintIdentifier": None}}) == []
