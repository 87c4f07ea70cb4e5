"""Automations: actions with an automation trigger, fired by entity, run and timer events.

Entity and run changes reach `entity_changes_queue_automations` / `run_changes_queue_automations` in the writer's
transaction (portal.events); when an automation listens, the event object (PORT_API.md) is queued to Celery
(`automations_fire_task`, an outbox row of that transaction), which matches automations, evaluates their jq conditions and creates one run per firing
(origin AUTOMATION, no requester), dispatched on commit like any run. Timer expiries are fired by the sweeper
(actions/services/timers.py) inside its claim transaction, through the same `automations_fire`.

Loop guard: a run's `automation_depth` is 0 for runs started by people; an automation fired by a run's change, or
by an entity change made with a run's id, is one deeper than that run. Firing deeper than AUTOMATION_MAX_DEPTH
is refused, and an automation never fires on changes of its own runs (that would always be a loop); both
refusals are audited (FAILURE) and logged.
"""
import json
import logging
import secrets

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from actions.choices import RunOrigin, RunStatus, TriggerType
from actions.models import Action, Run
from actions.services.runs import run_audit, run_snapshot, run_started
from audit import choices as audit_choices
from audit.services import audit_record_failure
from catalog.models import Entity
from portal.actor import Actor
from portal.jq import JqError, Undecided, jq_first, jq_first_here
from portal.prepared_statements import execute_prepared, select_prepared
from portal.datetimes import instant_text

logger = logging.getLogger(__name__)

# Audit verbs of this module (dotted, as audit/choices.py; kept here until moved there).
AUTOMATION_REFUSED = "actions.automation.refused"
AUTOMATION_CONDITION_FAILED = "actions.automation.condition_failed"

TIMER_EXPIRED = "TIMER_PROPERTY_EXPIRED"
ENTITY_EVENT_TYPES = {
    "CREATE": ("ENTITY_CREATED", "ANY_ENTITY_CHANGE"),
    "UPDATE": ("ENTITY_UPDATED", "ANY_ENTITY_CHANGE"),
    "DELETE": ("ENTITY_DELETED", "ANY_ENTITY_CHANGE"),
}
RUN_EVENT_TYPES = {
    "CREATE": ("RUN_CREATED", "ANY_RUN_CHANGE"),
    "UPDATE": ("RUN_UPDATED", "ANY_RUN_CHANGE"),
}
ALL_ENTITY_TYPES = ("ENTITY_CREATED", "ENTITY_UPDATED", "ENTITY_DELETED", "ANY_ENTITY_CHANGE")
ALL_RUN_TYPES = ("RUN_CREATED", "RUN_UPDATED", "ANY_RUN_CHANGE")


def automation_max_depth() -> int:
    return int(getattr(settings, "AUTOMATION_MAX_DEPTH", 3))


def _automations():
    return Action.objects.filter(trigger_type=TriggerType.AUTOMATION, publish=True)


# --- event objects ---------------------------------------------------------------------------------------

def entity_event_build(change, *, at=None) -> dict:
    """The event object of one ENTITY_CHANGED change (catalog's payload item)."""
    return {
        "action": change["action"],
        "resourceType": "entity",
        "trigger": {"by": {"userId": change.get("by")}, "origin": change.get("origin"), "at": instant_text(at or timezone.now())},
        "context": {"blueprintIdentifier": change["blueprint"], "entityIdentifier": change["identifier"],
                    "runId": change.get("runId")},
        "diff": {"before": change.get("before"), "after": change.get("after")},
    }


def run_event_build(change) -> dict:
    """The event object of one RUN_CHANGED announcement."""
    after = change.get("after") or {}
    entity = after.get("entity") or {}
    return {
        "action": change["action"],
        "resourceType": "run",
        "trigger": {"by": {"userId": after.get("createdBy")}, "origin": after.get("source"),
                    "at": after.get("updatedAt") or instant_text(timezone.now())},
        "context": {"runId": change["runId"], "actionIdentifier": change["actionIdentifier"],
                    "blueprintIdentifier": (after.get("blueprint") or {}).get("identifier") or None,
                    "entityIdentifier": entity.get("identifier")},
        "diff": {"before": change.get("before"), "after": after},
    }


def timer_event_build(*, entity_json, blueprint_identifier, entity_identifier, property, at) -> dict:
    return {
        "action": TIMER_EXPIRED,
        "resourceType": "entity",
        "trigger": {"by": {"userId": "system"}, "origin": "SYSTEM", "at": instant_text(at)},
        "context": {"blueprintIdentifier": blueprint_identifier, "entityIdentifier": entity_identifier,
                    "propertyIdentifier": property},
        "diff": {"before": entity_json, "after": entity_json},
    }


def automations_for_event(event):
    """The published automations listening for `event`, in identifier order."""
    context = event.get("context") or {}
    if event.get("resourceType") == "run":
        types = RUN_EVENT_TYPES.get(event.get("action"), ())
        queryset = _automations().filter(trigger__event__actionIdentifier=context.get("actionIdentifier"))
    elif event.get("action") == TIMER_EXPIRED:
        types = (TIMER_EXPIRED,)
        queryset = _automations().filter(blueprint_identifier=context.get("blueprintIdentifier"),
                                         trigger__event__propertyIdentifier=context.get("propertyIdentifier"))
    else:  # an entity's change, the most frequent (a deployment report's): one prepared statement
        types = ENTITY_EVENT_TYPES.get(event.get("action"), ())
        blueprint = context.get("blueprintIdentifier")
        if not types or not isinstance(blueprint, str):
            return []
        return select_prepared("automations_of_entity", Action, ENTITY_AUTOMATIONS_WHERE,
                               [TriggerType.AUTOMATION.value, blueprint, list(types)], order_by="identifier")
    if not types:
        return []
    return list(queryset.filter(trigger__event__type__in=list(types)).order_by("identifier"))


ENTITY_AUTOMATIONS_WHERE = ("trigger_type = %s AND publish AND blueprint_identifier = %s "
                            "AND trigger #>> '{event,type}' = ANY(%s::text[])")


def event_depth(event) -> int:
    """How deep an automation fired by `event` is: one deeper than the run that caused it, else 0."""
    run_id = (event.get("context") or {}).get("runId")
    if not run_id:
        return 0
    parent = Run.objects.filter(pk=run_id).values_list("automation_depth", flat=True).first()
    return 0 if parent is None else parent + 1


def condition_holds(automation, event) -> bool:
    """The automation's jq condition over the event (each expression truthy, combined). No condition: True.
    A failing expression raises JqError."""
    return _holds(automation.trigger.get("condition"), event, jq_first)


def _holds(condition, event, evaluate):
    if not condition:
        return True
    results = (evaluate(expression, event) not in (None, False) for expression in condition["expressions"])
    return any(results) if condition.get("combinator") == "or" else all(results)


def condition_fails_here(condition, event) -> bool:
    """True when `condition` (an automation trigger's) is known, in this process, not to hold on `event`: every
    expression it evaluates is in portal/jq_fast.py's subset and answered exactly (portal/jq.py jq_first_here).
    False when it holds or only the sandbox can tell."""
    try:
        return not _holds(condition, event, jq_first_here)
    except (Undecided, LookupError, TypeError, AttributeError):  # a condition of another shape: the worker's to judge
        return False


# --- firing ----------------------------------------------------------------------------------------------

def _refuse(automation, event, depth, message):
    logger.warning("automation %s not fired: %s", automation.identifier, message)
    context = event.get("context") or {}
    audit_record_failure(
        actor=Actor.system(), verb=AUTOMATION_REFUSED, action=audit_choices.AuditAction.CREATE, resource_type="action",
        identifier=automation.identifier, blueprint=automation.blueprint_identifier, run_id=context.get("runId") or "",
        context={"actionIdentifier": automation.identifier, "eventType": automation.trigger["event"]["type"],
                 "depth": depth, **{k: v for k, v in context.items() if v is not None}},
        message=message,
    )


@transaction.atomic
def automation_run_create(*, event, action, depth, entity=None, terminates_entity=None) -> Run:
    """One firing of an automation: a run (origin AUTOMATION, no requester) that starts IN_PROGRESS and is
    dispatched on commit like a requested run."""
    context = event.get("context") or {}
    now = timezone.now()
    entity_identifier = entity.identifier if entity is not None else (
        context.get("entityIdentifier") if event.get("resourceType") == "entity" else "") or ""
    run = Run(
        id="r_" + secrets.token_hex(8), action=action,
        blueprint_identifier=action.blueprint_identifier or context.get("blueprintIdentifier") or "",
        entity=entity, entity_identifier=entity_identifier, entity_title=entity.title if entity is not None else "",
        properties={}, requested_by=None, origin=RunOrigin.AUTOMATION, required_approval=False,
        status=RunStatus.IN_PROGRESS, trigger_event=event, automation_depth=depth,
        terminates_entity=terminates_entity, started_at=now,
    )
    run_started(run, now)
    run.save(force_insert=True)
    what = event.get("action") if event.get("resourceType") != "run" else f"run {event['action']}"
    run_audit(actor=Actor.system(), run=run, verb=audit_choices.RUN_CREATED, action=audit_choices.AuditAction.CREATE,
              after={**run_snapshot(run), "automationDepth": depth,
                     "terminatesEntity": terminates_entity.identifier if terminates_entity is not None else None},
              message=f"Automation {action.identifier!r} fired by {what} "
                      f"({context.get('blueprintIdentifier') or context.get('actionIdentifier')}:"
                      f"{context.get('entityIdentifier') or context.get('runId')}).")
    return run


def automations_fire(*, event, automations=None, entity=None, terminates_entity=None) -> list:
    """Fire every automation listening for `event` whose condition holds; return the runs created.
    `automations` (already matched) saves the lookup; `entity` is the entity the runs are about (looked up from
    the event when omitted); `terminates_entity` marks the runs as TTL teardowns of that entity."""
    automations = automations_for_event(event) if automations is None else automations
    if not automations:
        return []
    depth = event_depth(event)
    context = event.get("context") or {}
    # the entity the runs are about: read once the first run is created (most events fire nothing: a condition that
    # does not hold reads no entity)
    unread = entity is None and event.get("resourceType") == "entity" and event.get("action") != "DELETE"
    runs = []
    for automation in automations:
        if event.get("resourceType") == "run" and context.get("actionIdentifier") == automation.identifier:
            _refuse(automation, event, depth, f"Automation {automation.identifier!r} does not fire on changes of its "
                                              f"own runs (run {context.get('runId')}): that would loop.")
            continue
        if depth > automation_max_depth():
            _refuse(automation, event, depth, f"Automation {automation.identifier!r} refused: depth {depth} exceeds "
                                              f"AUTOMATION_MAX_DEPTH={automation_max_depth()} (a loop of automations?).")
            continue
        try:
            if not condition_holds(automation, event):
                continue
        except JqError as exc:
            logger.warning("automation %s: condition failed: %s", automation.identifier, exc.message)
            audit_record_failure(
                actor=Actor.system(), verb=AUTOMATION_CONDITION_FAILED, action=audit_choices.AuditAction.CREATE,
                resource_type="action", identifier=automation.identifier, blueprint=automation.blueprint_identifier,
                context={"actionIdentifier": automation.identifier, **{k: v for k, v in context.items() if v is not None}},
                message=f"trigger.condition: {exc.message}; the automation did not fire.",
            )
            continue
        if unread:
            entity = (Entity.objects.filter(blueprint__identifier=context.get("blueprintIdentifier"),
                                            identifier=context.get("entityIdentifier")).first())
            unread = False
        runs.append(automation_run_create(event=event, action=automation, depth=depth, entity=entity,
                                          terminates_entity=terminates_entity))
    return runs


# --- portal.events subscribers (in the writer's transaction): queue, never fire inline ------------------------

def _queue(event):
    from actions.tasks import automations_fire_task
    from portal.outbox import outbox_enqueue

    outbox_enqueue(automations_fire_task, [event])


# (blueprint identifier, event type, trigger condition) of the published automations listening to entity events of
# these blueprints; prepared once per connection, as every entity write asks it (_automations() as one statement)
LISTENING_SQL = (f"SELECT blueprint_identifier, trigger #>> '{{event,type}}', trigger -> 'condition' "
                 f"FROM {Action._meta.db_table} "
                 "WHERE trigger_type = %s AND publish AND blueprint_identifier = ANY(%s::text[]) "
                 "AND trigger #>> '{event,type}' = ANY(%s::text[])")


def entity_changes_queue_automations(changes):
    """ENTITY_CHANGED subscriber: one query to see who listens, then one task per change that may fire one. A change
    made by no run (depth 0: no automation is refused for it) whose listeners' conditions all fail on its event,
    decided in this process (`condition_fails_here`), is not queued: the worker would fire nothing and record
    nothing for it. A condition only the sandbox can evaluate is left to the worker, as before."""
    blueprints = sorted({change["blueprint"] for change in changes})
    with connection.cursor() as cursor:
        execute_prepared(cursor, "automations_listening", LISTENING_SQL,
                         [TriggerType.AUTOMATION.value, blueprints, list(ALL_ENTITY_TYPES)], generic_plan=True)
        listening = {}
        for blueprint, kind, condition in cursor.fetchall():
            listening.setdefault((blueprint, kind), []).append(json.loads(condition) if isinstance(condition, str)
                                                               else condition)
    if not listening:
        return
    at = timezone.now()
    for change in changes:
        conditions = [condition for kind in ENTITY_EVENT_TYPES.get(change["action"], ())
                      for condition in listening.get((change["blueprint"], kind), ())]
        if not conditions:
            continue
        event = entity_event_build(change, at=at)
        if (not change.get("runId") and automation_max_depth() >= 0
                and all(condition_fails_here(condition, event) for condition in conditions)):
            continue
        _queue(event)


def run_changes_queue_automations(change):
    """RUN_CHANGED subscriber: queue the event when an automation listens on the run's action."""
    kinds = RUN_EVENT_TYPES.get(change.get("action"), ())
    if kinds and _automations().filter(trigger__event__actionIdentifier=change.get("actionIdentifier"),
                                       trigger__event__type__in=list(kinds)).exists():
        _queue(run_event_build(change))
