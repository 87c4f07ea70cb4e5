"""TTL policies of CREATE actions (`ttl: {property, default, maximum, extendBy}`, ISO 8601 durations): start the
created entity's timer, extend it, warn its owner ahead of expiry, and settle its teardown.

- Start: when a CREATE run's result entity is linked (the RUN_CHANGED announcement of `run_link_entity`, in the
  transaction of the entity write that linked it: a TTL that cannot start fails that write), the entity's timer
  property is set to now + the requested TTL: the run's `ttl` input (an ISO duration) when the
  action defines one, else the policy's default; never more than the maximum.
- Extend (`ttl_extend`, exposed as POST /v1/blueprints/{bp}/entities/{id}/ttl/extend — the built-in "Extend
  TTL" day-2 operation of every blueprint with a TTL policy): moves the expiry by `extendBy` (else the default),
  never past created_at + maximum; at the maximum it is refused (422 naming the limit).
- Warn (`ttl_warnings_send`, beat): timers expiring within NotificationSettings.ttl_warning_hours, once per
  expiry (Timer.warned_at, re-armed by the entity service when the expiry moves).
- Terminate: the sweeper fires the blueprint's TIMER_PROPERTY_EXPIRED automations as teardown runs
  (`Run.terminates_entity`); when one ends SUCCESS the entity is deleted, when it ends FAILURE (or the delete is
  refused) the entity stays, its timer is marked (`termination_failed_at`) and the owner is told.
"""
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_duration

from actions.access import can_execute
from actions.choices import Operation, RunStatus
from actions.models import Action, NotificationSettings, Run
from actions.selectors.ttl import ttl_policies
from catalog.selectors.entities import entity_team_ids
from audit import choices as audit_choices
from audit.services import audit_event_build, audit_record, audit_record_many
from catalog.access import is_admin
from catalog.models import Entity, Timer
from portal.actor import Actor
from portal.errors import Conflict, Forbidden, PortalError, ValidationFailed
from portal.datetimes import LATEST, instant_text

logger = logging.getLogger(__name__)

# Audit verbs of this module (dotted, as audit/choices.py; kept here until moved there).
TTL_STARTED = "actions.ttl.started"
TTL_EXTENDED = "actions.ttl.extended"
TTL_WARNED = "actions.ttl.warned"
TTL_TERMINATED = "actions.ttl.terminated"
TTL_TERMINATION_FAILED = "actions.ttl.termination_failed"
WARNING_BATCH = 100


def _ms(value):
    """Timer values are stored with millisecond precision (instant_text): compare and cap at that precision."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def ttl_governing_action(*, blueprint_identifier, creating_run=None, property=None, policies=None) -> Action | None:
    """The CREATE action whose TTL policy an entity's timer follows: the policy of the run that created the entity,
    else the blueprint's (the first by identifier). `property` narrows it to one timer property; `policies` are
    `ttl_policies()` when the caller has them already (the environments page, for many rows)."""
    ttl = creating_run.action.ttl if creating_run is not None else None
    if ttl and property in (None, ttl.get("property")):
        return creating_run.action
    policies = ttl_policies() if policies is None else policies
    governing = [action for (blueprint, prop), action in policies.items()
                 if blueprint == blueprint_identifier and property in (None, prop)]
    return min(governing, key=lambda action: action.identifier, default=None)


def ttl_policy_action(*, blueprint_identifier, property=None) -> Action | None:
    """The CREATE action whose TTL policy governs `property` (any timer property when None) of the blueprint."""
    return ttl_governing_action(blueprint_identifier=blueprint_identifier, property=property)


def _creating_run(entity):
    return (Run.objects.select_related("action", "requested_by").filter(result_entity=entity)
            .order_by("created_at").first())


def _policy_for_entity(entity):
    """(action, policy, creating run) for the entity: the policy of the run that created it, else the blueprint's."""
    run = _creating_run(entity)
    action = ttl_governing_action(blueprint_identifier=entity.blueprint.identifier, creating_run=run)
    if action is None:
        raise ValidationFailed(f"blueprint {entity.blueprint.identifier!r} has no TTL policy (no CREATE action with `ttl`)",
                               path="ttl")
    return action, action.ttl, run


def ttl_requested(action, properties, now=None) -> timedelta:
    """The run's `ttl` input when the action defines one, else the default; at most the maximum. Run requests check
    it before the run is written: a `ttl` input that is not a positive ISO 8601 duration, or one whose expiry falls
    past the portal's last date, is a ValidationFailed naming `properties.ttl`."""
    policy = action.ttl
    duration = parse_duration(policy["default"])
    inputs = ((action.trigger.get("userInputs") or {}).get("properties") or {})
    requested = (properties or {}).get("ttl") if "ttl" in inputs else None
    if isinstance(requested, str):
        try:
            duration = parse_duration(requested)
        except OverflowError:  # more days than a timedelta holds
            duration = timedelta.max
        if duration is None or duration <= timedelta(0):
            raise ValidationFailed(f"{requested!r} is not a positive ISO 8601 duration such as 'PT4H' or 'P1D'",
                                   path="properties.ttl")
    if policy.get("maximum"):
        duration = min(duration, parse_duration(policy["maximum"]))
    now = now or timezone.now()
    if duration >= LATEST - now:
        raise ValidationFailed(f"{requested or policy['default']!r} would expire after {instant_text(LATEST)}",
                               path="properties.ttl")
    return duration


def _entity_timer_write(entity, property, expires_at):
    from catalog.services.entities import PATCH, entity_write_one

    entity_write_one(actor=Actor.system(), blueprint=entity.blueprint, identifier=entity.identifier, mode=PATCH,
                     data={"properties": {property: instant_text(expires_at)}})


def _ttl_audit(*, verb, entity, run_id="", before=None, after=None, message="", status=audit_choices.AuditStatus.SUCCESS):
    return audit_event_build(
        actor=Actor.system(), verb=verb, action=audit_choices.AuditAction.UPDATE, resource_type="entity",
        identifier=entity.identifier, blueprint=entity.blueprint.identifier, run_id=run_id, before=before, after=after,
        context={"blueprintIdentifier": entity.blueprint.identifier, "entityIdentifier": entity.identifier},
        status=status, message=message,
    )


# --- start ---------------------------------------------------------------------------------------------------

@transaction.atomic
def ttl_start(*, run_id) -> Timer | None:
    """Set the TTL of the entity a CREATE run produced (its result entity) from the action's policy."""
    run = (Run.objects.select_related("action", "result_entity__blueprint")
           .filter(pk=run_id, action__operation=Operation.CREATE, result_entity__isnull=False).first())
    if run is None or not run.action.ttl:
        return None
    entity, policy = run.result_entity, run.action.ttl
    duration = ttl_requested(run.action, run.properties)
    expires_at = _ms(timezone.now() + duration)
    _entity_timer_write(entity, policy["property"], expires_at)
    audit_record_many([_ttl_audit(verb=TTL_STARTED, entity=entity, run_id=run.id,
                                  after={"property": policy["property"], "expiresAt": instant_text(expires_at), "ttl": str(duration)},
                                  message=f"TTL of {duration} set by run {run.id} ({run.action.identifier!r}).")])
    return Timer.objects.get(entity=entity, property=policy["property"])


def run_changes_start_ttl(change):
    """RUN_CHANGED subscriber (in the transaction): the announcement of `run_link_entity` (its `before` names resultEntity None and its
    `after` has the result) starts the TTL of the created entity, once per run."""
    before, after = change.get("before") or {}, change.get("after") or {}
    if "resultEntity" in before and before["resultEntity"] is None and after.get("result"):
        ttl_start(run_id=change["runId"])


# --- extend --------------------------------------------------------------------------------------------------

def ttl_may_extend(user, *, entity, creating_run, may_run_action) -> bool:
    """The system (no user), admins, the entity's owner (requester of the run that created it, or its creator) and
    anyone who may run the governing CREATE action on it (`may_run_action()`, asked last) may extend its TTL."""
    if user is None or is_admin(user):
        return True
    if creating_run is not None and creating_run.requested_by_id == user.pk:
        return True
    if entity.created_by and entity.created_by == user.email:
        return True
    return may_run_action()


@dataclass(frozen=True)
class TtlExtension:
    """What extending a timer now does under its policy: from `base` (the expiry, or now if later) by `step`, to
    `expires_at`, never past `limit` (created_at + maximum; None without a maximum)."""

    step: timedelta
    base: datetime
    limit: datetime | None
    expires_at: datetime

    @property
    def at_maximum(self) -> bool:
        """Already at the maximum: an extension is refused."""
        return self.limit is not None and self.base >= self.limit

    @property
    def capped(self) -> bool:
        """The extension stops at the maximum rather than going the whole step."""
        return self.limit is not None and self.base + self.step > self.limit


def ttl_extension(*, entity, timer, policy, now=None) -> TtlExtension:
    """How `ttl_extend` would move the timer now (the environments page shows it on the Extend button)."""
    step = parse_duration(policy.get("extendBy") or policy["default"])
    base = max(timer.expires_at, _ms(now or timezone.now()))
    limit = _ms(entity.created_at + parse_duration(policy["maximum"])) if policy.get("maximum") else None
    expires_at = base + step if limit is None else min(base + step, limit)
    return TtlExtension(step=step, base=base, limit=limit, expires_at=expires_at)


@transaction.atomic
def ttl_extend(*, actor, entity) -> dict:
    """Move the entity's TTL by the policy's `extendBy` (else its default), never past created_at + maximum."""
    entity = Entity.objects.select_for_update().select_related("blueprint").get(pk=entity.pk)
    action, policy, creating_run = _policy_for_entity(entity)
    if not ttl_may_extend(actor.user, entity=entity, creating_run=creating_run,
                          may_run_action=lambda: can_execute(actor.user, action, entity_team_ids(entity))):
        raise Forbidden(f"You may not extend the TTL of entity {entity.identifier!r}: only its owner or those who may "
                        f"run {action.identifier!r} may.")
    prop = policy["property"]
    timer = Timer.objects.select_for_update().filter(entity=entity, property=prop).first()
    if timer is None:
        raise ValidationFailed(f"entity {entity.identifier!r} has no expiry to extend", path=f"properties.{prop}")
    if timer.fired_at is not None and timer.termination_failed_at is None:
        raise Conflict(f"entity {entity.identifier!r} expired at {instant_text(timer.expires_at)}; "
                       "its teardown is under way.", path=f"properties.{prop}", code="expired")
    extension = ttl_extension(entity=entity, timer=timer, policy=policy)
    if extension.at_maximum:
        raise ValidationFailed(f"the TTL is already at its maximum of {policy['maximum']} "
                               f"(expires {instant_text(timer.expires_at)}); it cannot be extended.",
                               path=f"properties.{prop}")
    new, limit = extension.expires_at, extension.limit
    before = {"property": prop, "expiresAt": instant_text(timer.expires_at)}
    _entity_timer_write(entity, prop, new)
    after = {"property": prop, "expiresAt": instant_text(new), "maximumAt": instant_text(limit)}
    audit_record(actor=actor, verb=TTL_EXTENDED, action=audit_choices.AuditAction.UPDATE, resource_type="entity",
                 identifier=entity.identifier, blueprint=entity.blueprint.identifier, before=before, after=after,
                 context={"blueprintIdentifier": entity.blueprint.identifier, "entityIdentifier": entity.identifier,
                          "actionIdentifier": action.identifier},
                 message=f"TTL extended by {policy.get('extendBy') or policy['default']}"
                         + (" (capped at the maximum)." if limit is not None and new == limit else "."))
    return {"property": prop, "expiresAt": instant_text(new), "maximumAt": instant_text(limit),
            "extendBy": policy.get("extendBy") or policy["default"]}


# --- warn ----------------------------------------------------------------------------------------------------

def _notify(task_name, *args):
    """Queue the Slack notification task `actions.tasks.<task_name>` (actions/notifications.py) in the caller's
    transaction (an outbox row)."""
    from actions import tasks
    from portal.outbox import outbox_enqueue

    outbox_enqueue(getattr(tasks, task_name), list(args))


def _policy_timers():
    """Q matching the timers governed by a TTL policy, or None when no action has one."""
    condition = None
    for blueprint, prop in ttl_policies():
        clause = Q(entity__blueprint__identifier=blueprint, property=prop)
        condition = clause if condition is None else condition | clause
    return condition


def ttl_warnings_send(*, batch_size=WARNING_BATCH) -> int:
    """Warn owners of TTL timers expiring within ttl_warning_hours, once per expiry; return how many."""
    condition = _policy_timers()
    hours = NotificationSettings.current().ttl_warning_hours
    if condition is None or not hours:
        return 0
    with transaction.atomic():
        now = timezone.now()
        timers = list(Timer.objects.select_for_update(skip_locked=True, of=("self",)).select_related("entity__blueprint")
                      .filter(condition, warned_at__isnull=True, fired_at__isnull=True, expires_at__gt=now,
                              expires_at__lte=now + timedelta(hours=hours)).order_by("expires_at")[:batch_size])
        if not timers:
            return 0
        Timer.objects.filter(pk__in=[t.pk for t in timers]).update(warned_at=now)
        audit_record_many([_ttl_audit(verb=TTL_WARNED, entity=t.entity,
                                      after={"property": t.property, "expiresAt": instant_text(t.expires_at)},
                                      message=f"Owner warned: {t.property} expires at {instant_text(t.expires_at)}.")
                           for t in timers])
        for timer in timers:
            _notify("ttl_warning_notify_task", timer.entity_id, timer.property)
    return len(timers)


# --- terminate -----------------------------------------------------------------------------------------------

def ttl_termination_unhandled(*, timer):
    """A TTL expired and no automation took its teardown up: mark it (in the sweeper's transaction) and audit."""
    entity = timer.entity
    now = timezone.now()
    Timer.objects.filter(pk=timer.pk).update(termination_failed_at=now)
    message = (f"{timer.property} expired but no TIMER_PROPERTY_EXPIRED automation fired for blueprint "
               f"{entity.blueprint.identifier!r}: the entity stays, marked as failed to terminate.")
    logger.warning("entity %s:%s: %s", entity.blueprint.identifier, entity.identifier, message)
    audit_record_many([_ttl_audit(verb=TTL_TERMINATION_FAILED, entity=entity, status=audit_choices.AuditStatus.FAILURE,
                                  after={"property": timer.property, "terminationFailedAt": instant_text(now)}, message=message)])


def run_changes_settle_termination(change):
    """RUN_CHANGED subscriber (in the transaction): an automation run that just ended may be a teardown; settle it
    in Celery (an outbox row)."""
    before, after = change.get("before") or {}, change.get("after") or {}
    ended = (RunStatus.SUCCESS, RunStatus.FAILURE)
    if after.get("source") == "AUTOMATION" and after.get("status") in ended and before.get("status") not in ended:
        if Run.objects.filter(pk=change["runId"], terminates_entity__isnull=False).exists():
            from actions.tasks import ttl_termination_settle_task
            from portal.outbox import outbox_enqueue

            outbox_enqueue(ttl_termination_settle_task, [change["runId"]])


def ttl_termination_settle(*, run_id) -> str | None:
    """A teardown run ended: SUCCESS deletes its entity; FAILURE (or a refused delete) keeps it, marks its timer
    and tells the owner. Returns "deleted", "kept", or None when there is nothing (left) to settle."""
    from catalog.services.entities import entities_delete

    with transaction.atomic():
        run = (Run.objects.select_for_update(of=("self",)).select_related("action")
               .filter(pk=run_id, terminates_entity__isnull=False).first())
        if run is None or run.status not in (RunStatus.SUCCESS, RunStatus.FAILURE):
            return None
        entity = Entity.objects.select_for_update().select_related("blueprint").filter(pk=run.terminates_entity_id).first()
        if entity is None:
            return None
        prop = ((run.trigger_event or {}).get("context") or {}).get("propertyIdentifier")
        if run.status == RunStatus.SUCCESS:
            try:
                with transaction.atomic():
                    # Not tagged with run_id: the run has ended, and the catalog takes run ids of runs in progress only.
                    entities_delete(actor=Actor.system(), blueprint=entity.blueprint, identifiers=[entity.identifier])
            except PortalError as exc:
                reason = f"the teardown succeeded but the entity could not be deleted: {exc.message}"
            else:
                audit_record_many([_ttl_audit(verb=TTL_TERMINATED, entity=entity, run_id=run.id,
                                              before={"property": prop, "identifier": entity.identifier}, after=None,
                                              message=f"Torn down by run {run.id} ({run.action.identifier!r}); removed from the catalog.")])
                return "deleted"
        else:
            reason = f"teardown run {run.id} failed" + (f": {run.status_label}" if run.status_label else "")
        now = timezone.now()
        Timer.objects.filter(entity=entity, property=prop).update(termination_failed_at=now)
        audit_record_many([_ttl_audit(verb=TTL_TERMINATION_FAILED, entity=entity, run_id=run.id,
                                      status=audit_choices.AuditStatus.FAILURE,
                                      after={"property": prop, "terminationFailedAt": instant_text(now)},
                                      message=f"Not removed from the catalog: {reason}.")])
        entity_id = entity.pk
        _notify("termination_failed_notify_task", entity_id, run_id)
        return "kept"
