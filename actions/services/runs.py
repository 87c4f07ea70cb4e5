"""Every write to runs: request, report back (PATCH, logs), backend outcomes, timeouts, dispatch claims and
delivery attempts.

Each function locks the run row it changes, moves its status through `actions.state.transition`,
records its audit event in the same transaction and queues side effects as outbox rows in it (portal/outbox.py).
"""
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_duration

from actions.access import can_execute
from actions.choices import DEFAULT_RUN_TIMEOUT_SECONDS, Operation, RunOrigin, RunStatus, TriggerType
from actions.models import Run, RunLog
from actions.secrets import secrets_scrub
from actions.services.quotas import QuotaExceeded, QuotaStanding, quota_lock, quota_standing
from actions.state import is_repeat, transition
from audit import choices as audit_choices
from audit.services import audit_record, audit_record_failure
from catalog.access import is_admin
from catalog.models import Entity
from catalog.selectors.entities import entity_team_ids
from portal.actor import Actor
from portal.errors import Forbidden, PortalError, ValidationFailed
from portal.outbox import outbox_enqueue
from portal.datetimes import instant_text
from portal.strictjson import storable

logger = logging.getLogger(__name__)
REPORTED_STATUSES = (RunStatus.SUCCESS, RunStatus.FAILURE)
SWEEP_LIMIT = 500


class BackendNotConfigured(PortalError):
    """The action's backend needs configuration this portal does not have (GitHub credentials, say)."""

    status = 409
    code = "backend_not_configured"


def run_snapshot(run) -> dict:
    """The run's state as the audit diff records it."""
    return {
        "id": run.id,
        "action": run.action.identifier,
        "entity": run.entity_identifier or None,
        "status": run.status,
        "statusLabel": run.status_label or None,
        "link": list(run.links),
        "summary": run.summary or None,
        "externalRunId": run.external_run_id or None,
        "properties": run.properties,
        "createdBy": run.requested_by.email if run.requested_by_id else None,
        "runAsBy": run.run_as_by or None,
        "statusLocked": run.status_locked,
    }


def run_audit(*, actor, run, verb, action=audit_choices.AuditAction.UPDATE, before=None, after=None, message=""):
    audit_record(
        actor=actor, verb=verb, action=action, resource_type="run", identifier=run.id,
        blueprint=run.blueprint_identifier, run_id=run.id, before=before, after=after, message=message,
        context={"runId": run.id, "actionIdentifier": run.action.identifier,
                 "blueprintIdentifier": run.blueprint_identifier or None, "entityIdentifier": run.entity_identifier or None},
    )
    if verb in (audit_choices.RUN_CREATED, audit_choices.RUN_UPDATED):
        _run_changed_announce(run, created=verb == audit_choices.RUN_CREATED, before=before)


def _run_changed_announce(run, *, created, before):
    """Every run creation and change is audited through run_audit; announce it in the transaction (notifications,
    automations and teardowns queue their work as outbox rows)."""
    from actions.serializers import run_json
    from portal import events

    event = {"action": "CREATE" if created else "UPDATE", "runId": run.id, "actionIdentifier": run.action.identifier,
             "before": None if created else before, "after": run_json(run)}
    events.announce(events.RUN_CHANGED, event)


def _stored(value, revealed=()):
    """What a run is about to store from outside (a payload, a receiver's answer, a log line, a label): scrubbed of
    secret values, and made storable (a receiver's NUL, lone surrogate or NaN must not fail the run's write)."""
    return storable(secrets_scrub(value, revealed))


def _locked(run):
    return Run.objects.select_for_update(of=("self",)).select_related("action", "requested_by").get(pk=run.pk)


# --- request ---------------------------------------------------------------------------------------

def run_request(*, actor, action, properties, entity_identifier=None, run_as=None, origin=RunOrigin.API) -> Run:
    """Request a run of a self-service action. A quota refusal is audited in its own transaction,
    after this request's transaction has rolled back (so the refusal survives it)."""
    try:
        return _run_request(actor=actor, action=action, properties=properties, entity_identifier=entity_identifier,
                            run_as=run_as, origin=origin)
    except QuotaExceeded as exc:
        audit_record_failure(
            actor=actor, verb=audit_choices.RUN_REFUSED, action=audit_choices.AuditAction.CREATE, resource_type="run",
            identifier=action.identifier, blueprint=action.blueprint_identifier, message=exc.message,
            context={"actionIdentifier": action.identifier, "entityIdentifier": entity_identifier or None,
                     "requester": run_as or actor.label, "error": exc.code},
        )
        raise


def _requester(actor, run_as):
    if run_as in (None, ""):
        if actor.user is None:
            raise Forbidden("A run must be requested by a user.")
        return actor.user
    if not is_admin(actor.user):
        raise Forbidden("only admins may run an action as another user.", path="run_as")
    user = get_user_model().objects.filter(email__iexact=run_as, is_active=True).first()
    if user is None:
        raise ValidationFailed(f"user {run_as!r} does not exist", path="run_as")
    return user


@dataclass(frozen=True)
class RunPreflight:
    """What a request of a run of `action` by `requester` meets before its inputs are read, decided in one place
    (`run_preflight`): the run form shows it, `run_request` enforces it, so the two cannot drift.

    `problems` are the refusals in the order `run_request` raises them (the action's state, the entity, the
    permission, the backend); `quota` is where the requester stands (its refusal is raised after the inputs are
    checked, unless the action asks for an approval beyond its quota); `required_approval` is what the run will wait
    for and `approval_reason` why; `ttl_default` / `ttl_maximum` the TTL of what a CREATE action makes."""

    action: object
    requester: object
    entity: object = None
    entity_team_ids: frozenset = frozenset()
    problems: tuple = ()
    quota: QuotaStanding | None = None
    required_approval: object = False
    approval_reason: str = ""
    ttl_default: timedelta | None = None
    ttl_maximum: timedelta | None = None

    @property
    def quota_refusal(self) -> QuotaExceeded | None:
        """The quota's refusal of this run (None when under it, or when beyond it asks for an approval)."""
        if self.quota is None or not self.quota.exceeded or self.quota.asks_approval:
            return None
        return self.quota.refusal

    @property
    def waits_for_approval(self) -> bool:
        return bool(self.required_approval)

    @property
    def status_label(self) -> str:
        """The label of a run that waits because it is beyond the quota."""
        if self.quota is None or not self.quota.asks_approval:
            return ""
        return f"Beyond the quota, so it needs an approval ({self.quota.refusal.message})"[:500]


def _action_problems(action):
    if action.trigger_type != TriggerType.SELF_SERVICE:
        yield ValidationFailed(f"{action.identifier!r} is an automation; it cannot be run by hand", path="action")
    if not action.publish:
        yield ValidationFailed(f"{action.identifier!r} is not published", path="action")


def _target_entity(action, entity_identifier, requester):
    """The entity the run is about (None for CREATE), or the ValidationFailed naming `entity` that refuses it: missing,
    or not one the requester may read."""
    from catalog.selectors.entities import entities_visible_to

    operation = action.operation
    if operation == Operation.CREATE:
        if entity_identifier not in (None, ""):
            raise ValidationFailed(f"action {action.identifier!r} creates an entity and takes none", path="entity")
        return None
    if entity_identifier in (None, ""):
        raise ValidationFailed(f"is required by {operation} action {action.identifier!r}", path="entity")
    if not isinstance(entity_identifier, str):
        raise ValidationFailed("must be an entity identifier", path="entity")
    queryset = Entity.objects.select_related("blueprint").filter(
        blueprint__identifier=action.blueprint_identifier, identifier=entity_identifier)
    entity = entities_visible_to(requester, queryset).first()
    if entity is None:
        raise ValidationFailed(f"entity {entity_identifier!r} of blueprint {action.blueprint_identifier!r} was not found",
                               path="entity")
    return entity


def _condition_check(action, entity, requester):
    """A DAY-2 or DELETE action runs only on entities matching its condition (a ValidationFailed naming `entity`)."""
    from catalog.selectors.search import search_queryset

    condition = (action.trigger or {}).get("condition")
    if entity is None or not condition:
        return
    matches = search_queryset(condition, user=requester, blueprint=entity.blueprint,
                              base=Entity.objects.filter(pk=entity.pk), path="trigger.condition").exists()
    if not matches:
        raise ValidationFailed(f"entity {entity.identifier!r} does not match the condition of action "
                               f"{action.identifier!r}", path="entity")


def _entity_and_permission(action, entity_identifier, user):
    """(the entity, its owning teams, the problems with either): the entity named must be right and match the
    action's condition before the permission on it can be asked."""
    try:
        entity = _target_entity(action, entity_identifier, user)
    except PortalError as exc:
        return None, frozenset(), [exc]
    try:
        _condition_check(action, entity, user)
    except PortalError as exc:  # not matching, or a condition that cannot be evaluated
        return entity, frozenset(), [exc]
    team_ids = frozenset(entity_team_ids(entity))
    if can_execute(user, action, team_ids):
        return entity, team_ids, []
    return entity, team_ids, [Forbidden(f"You may not run action {action.identifier!r}"
                                        + (f" on entity {entity.identifier!r}." if entity else "."))]


def _approval(action, quota):
    """(the approval the run will wait for, why): the action's own, else an approver's beyond a quota that asks."""
    from actions.services.approvals import approval_text

    if quota is not None and quota.asks_approval and not action.required_approval:
        return {"type": "ANY"}, "This run will wait for an approval because it is beyond the action's quota."
    return action.required_approval, approval_text(action.required_approval)


def run_preflight(*, user, action, entity_identifier=None, for_update=False) -> RunPreflight:
    """Everything a run of `action` by `user` (on the entity named, for DAY-2 and DELETE actions) meets before its
    inputs are read; see RunPreflight. `for_update` (inside run_request's transaction) first takes the quota's
    locks, so the standing still holds when the run is written."""
    from actions.backends import backend_unavailable
    from catalog.access import user_team_ids

    entity, team_ids, entity_problems = _entity_and_permission(action, entity_identifier, user)
    problems = [*_action_problems(action), *entity_problems]
    unavailable = backend_unavailable(action)
    if unavailable:
        problems.append(BackendNotConfigured(
            f"{action.identifier!r} is off until its backend is set up. {unavailable}", path="action"))

    user_teams = user_team_ids(user)
    if for_update:
        quota_lock(action=action, user=user, team_ids=user_teams)
    quota = quota_standing(action=action, user=user, team_ids=user_teams)
    required_approval, approval_reason = _approval(action, quota)
    ttl = action.ttl if action.operation == Operation.CREATE and action.ttl else {}
    return RunPreflight(
        action=action, requester=user, entity=entity, entity_team_ids=team_ids, problems=tuple(problems),
        quota=quota, required_approval=required_approval, approval_reason=approval_reason,
        ttl_default=parse_duration(ttl["default"]) if ttl.get("default") else None,
        ttl_maximum=parse_duration(ttl["maximum"]) if ttl.get("maximum") else None,
    )


def run_started(run, now=None):
    """A run that just became IN_PROGRESS: its timeout starts, and it is dispatched after commit."""
    now = now or timezone.now()
    seconds = run.action.run_timeout_seconds or DEFAULT_RUN_TIMEOUT_SECONDS
    run.timeout_at = (run.started_at or now) + timedelta(seconds=seconds)
    from actions.tasks import run_dispatch_task

    # An outbox row in the run's transaction: with the broker down the request still answers 202, and the
    # run is dispatched once when the broker is back.
    outbox_enqueue(run_dispatch_task, [run.id])


@transaction.atomic
def _run_request(*, actor, action, properties, entity_identifier, run_as, origin):
    from actions.inputs import inputs_clean

    requester = _requester(actor, run_as)
    preflight = run_preflight(user=requester, action=action, entity_identifier=entity_identifier, for_update=True)
    if preflight.problems:
        raise preflight.problems[0]
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise ValidationFailed("must be an object of input values", path="properties")
    inputs = inputs_clean(action, properties, user=requester)
    if action.ttl:
        from actions.services.ttl import ttl_requested

        ttl_requested(action, inputs)  # a TTL the run could not start is refused now, naming properties.ttl
    if preflight.quota_refusal is not None:
        raise preflight.quota_refusal

    now = timezone.now()
    entity, waiting = preflight.entity, preflight.waits_for_approval
    run = Run(
        id="r_" + secrets.token_hex(8), action=action, blueprint_identifier=action.blueprint_identifier,
        entity=entity, entity_identifier=entity.identifier if entity else "", entity_title=entity.title if entity else "",
        properties=inputs, requested_by=requester, run_as_by=actor.label if run_as not in (None, "") else "",
        origin=origin, required_approval=preflight.required_approval,
        status=RunStatus.WAITING_FOR_APPROVAL if waiting else RunStatus.IN_PROGRESS,
        status_label=preflight.status_label,
    )
    if waiting:
        if action.approval_timeout_seconds:
            run.approval_deadline = now + timedelta(seconds=action.approval_timeout_seconds)
    else:
        run.started_at = now
        run_started(run, now)
    run.save(force_insert=True)
    message = f"Run of {action.identifier!r} requested by {requester.email}"
    if run.run_as_by:
        message += f" (run as {requester.email} by {run.run_as_by})"
    run_audit(actor=actor, run=run, verb=audit_choices.RUN_CREATED, action=audit_choices.AuditAction.CREATE,
           after=run_snapshot(run), message=message + ".")
    if waiting and _notification_webhook(action):
        from actions.tasks import run_approval_notify_task

        outbox_enqueue(run_approval_notify_task, [run.id])
    return run


def _notification_webhook(action):
    notification = action.approval_notification or {}
    return isinstance(notification, dict) and str(notification.get("type", "")).lower() == "webhook" and notification.get("url")


# --- reporting back ------------------------------------------------------------------------------

def _check_reporter(actor, run):
    """The requester, admins (their API clients included) and the system may report on a run."""
    if actor.user is None or is_admin(actor.user) or actor.user.pk == run.requested_by_id:
        return
    raise Forbidden(f"Only the requester of run {run.id} or an admin may report on it.")


def _clean_links(link):
    if isinstance(link, str):
        return [link]
    if isinstance(link, list) and all(isinstance(item, str) for item in link):
        return list(link)
    raise ValidationFailed("must be a URL or a list of URLs", path="link")


def _ended(run):
    """Consequences of a run reaching a terminal status, in its transaction: a successful DELETE run
    deletes its entity (a refusal — dependents, say — keeps the entity and says so on the run)."""
    if run.status != RunStatus.SUCCESS or run.action.operation != Operation.DELETE or run.entity_id is None:
        return
    from catalog.services.entities import entities_delete

    entity = Entity.objects.select_related("blueprint").filter(pk=run.entity_id).first()
    if entity is None:
        return
    try:
        with transaction.atomic():
            # The run row still says IN_PROGRESS in the database, so the run_id reference check passes.
            entities_delete(actor=Actor.system(), blueprint=entity.blueprint, identifiers=[entity.identifier], run_id=run.id)
    except PortalError as exc:
        run.status_label = (f"{run.status_label} — " if run.status_label else "") + f"entity not deleted: {exc.message}"
        run.status_label = run.status_label[:500]
        return
    run.entity = None  # the FK was set null by the delete; keep entity_identifier for the record


@transaction.atomic
def run_update(*, actor, run, status=None, status_label=None, link=None, summary=None, external_run_id=None) -> Run:
    run = _locked(run)
    _check_reporter(actor, run)
    before = run_snapshot(run)
    # What reporters send is shown to everyone who may see the run: a secret echoed in it is not.
    status_label, link, summary = _stored([status_label, link, summary])
    if status is not None:
        if status not in REPORTED_STATUSES:
            raise ValidationFailed(f"must be SUCCESS or FAILURE, got {status!r}", path="status")
        if is_repeat(run, status):
            status = None  # already there: nothing to move, nothing to end again
        else:
            transition(run, status)
    if status_label is not None:
        if not isinstance(status_label, str):
            raise ValidationFailed("must be a string", path="statusLabel")
        run.status_label = status_label[:500]
    if link is not None:
        run.links = _clean_links(link)
    if summary is not None:
        if not isinstance(summary, str):
            raise ValidationFailed("must be a string", path="summary")
        run.summary = summary
    if external_run_id is not None:
        if not isinstance(external_run_id, str) or len(external_run_id) > 200:
            raise ValidationFailed("must be a string of at most 200 characters", path="externalRunId")
        run.external_run_id = external_run_id
    if status is not None:
        _ended(run)
    after = run_snapshot(run)
    if after == before:  # e.g. the same final status reported again
        return run
    run.save()
    run_audit(actor=actor, run=run, verb=audit_choices.RUN_UPDATED, before=before, after=after)
    return run


@transaction.atomic
def run_log_add(*, actor, run, message, termination_status=None, status_label=None) -> RunLog:
    run = _locked(run)
    _check_reporter(actor, run)
    if not isinstance(message, str) or not message:
        raise ValidationFailed("is required and must be a string", path="message")
    if termination_status not in (None, "") and termination_status not in REPORTED_STATUSES:
        raise ValidationFailed(f"must be SUCCESS or FAILURE, got {termination_status!r}", path="terminationStatus")
    if status_label is not None and not isinstance(status_label, str):
        raise ValidationFailed("must be a string", path="statusLabel")
    message, status_label = _stored([message, status_label])  # as in run_update
    before = run_snapshot(run)
    log = RunLog.objects.create(run=run, message=message, termination_status=termination_status or "",
                                status_label=(status_label or "")[:500])
    run_audit(actor=actor, run=run, verb=audit_choices.RUN_LOG_ADDED, action=audit_choices.AuditAction.CREATE,
           after={"id": log.pk, "message": message, "terminationStatus": termination_status or None,
                  "statusLabel": status_label or None})
    if termination_status:
        transition(run, termination_status, label=status_label)
        run.status_locked = True
        _ended(run)
    elif status_label is not None:
        run.status_label = status_label[:500]
    if termination_status or status_label is not None:
        run.save()
        run_audit(actor=actor, run=run, verb=audit_choices.RUN_UPDATED, before=before, after=run_snapshot(run),
               message="Ended for good by a termination log." if termination_status else "")
    return log


@transaction.atomic
def run_finish(*, actor, run, status, label) -> Run:
    """A backend's verdict (FAILURE with its reason; SUCCESS for synchronized webhooks). A run that is
    no longer IN_PROGRESS (reported back meanwhile, timed out) is left as it is and returned."""
    if status not in REPORTED_STATUSES:
        raise ValidationFailed(f"must be SUCCESS or FAILURE, got {status!r}", path="status")
    run = _locked(run)
    if run.status != RunStatus.IN_PROGRESS:
        return run
    before = run_snapshot(run)
    transition(run, status, label=_stored(label))
    _ended(run)
    run.save()
    run_audit(actor=actor, run=run, verb=audit_choices.RUN_UPDATED, before=before, after=run_snapshot(run))
    return run


# --- delivery attempts and their lease ---------------------------------------------------------------
# An attempt to deliver a run holds a lease of DELIVERY_LEASE_SECONDS (much shorter than the run's timeout): the
# dispatch claim takes it for attempt 1, `run_delivery_begin` for a retry. It ends when the attempt's call returns
# (`run_delivery_settled`) or schedules the next one (`run_delivery_retry`). A lease that expires means the worker
# died or hung mid-attempt: `run_delivery_leases_expire` tries again while attempts remain, else ends the run.
# Bookkeeping of delivery, not audited; what it ends in is.

def _lease_end():
    from django.conf import settings

    return timezone.now() + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)


def run_delivery_begin(*, run_id, attempt) -> bool:
    """Begin retry `attempt` (> 1) of an IN_PROGRESS run: one UPDATE, and only from the attempt before it, so a
    retry delivered twice (a redelivered message, a lease expiry racing a late worker) is begun once."""
    return Run.objects.filter(pk=run_id, status=RunStatus.IN_PROGRESS, attempts=attempt - 1).update(
        attempts=attempt, delivery_lease_until=_lease_end(), next_attempt_at=None) == 1


def run_delivery_settled(*, run_id, attempt) -> None:
    """Attempt `attempt`'s call returned (sent, retry scheduled or run ended): its lease ends."""
    Run.objects.filter(pk=run_id, attempts=attempt).update(delivery_lease_until=None)


@transaction.atomic
def run_delivery_retry(*, run, attempt, countdown, task, args=()) -> bool:
    """Attempt `attempt` failed: queue `task(run.id, attempt + 1, *args)` in `countdown` seconds (an outbox row in
    this transaction). Refused (False) when the run moved on meanwhile: ended, or another attempt began."""
    locked = Run.objects.select_for_update().filter(pk=run.pk, status=RunStatus.IN_PROGRESS, attempts=attempt).first()
    if locked is None:
        return False
    locked.delivery_lease_until = None
    locked.next_attempt_at = timezone.now() + timedelta(seconds=countdown)
    locked.save(update_fields=["delivery_lease_until", "next_attempt_at", "updated_at"])
    outbox_enqueue(task, [run.id, attempt + 1, *args], countdown=countdown)
    return True


def run_delivery_leases_expire(*, limit=SWEEP_LIMIT) -> int:
    """Beat: runs whose delivery lease expired are tried again while attempts remain (webhooks; see
    actions.backends.redelivery_task), else end FAILURE "Delivery lease expired after N attempts"."""
    due = list(Run.objects.filter(status=RunStatus.IN_PROGRESS, delivery_lease_until__lt=timezone.now())
               .order_by("delivery_lease_until").values_list("id", flat=True)[:limit])
    return sum(1 for run_id in due if _delivery_lease_expire(run_id))


def _delivery_lease_expire(run_id) -> bool:
    from actions.backends import delivery_max_attempts, redelivery

    with transaction.atomic():
        run = (Run.objects.select_for_update(skip_locked=True, of=("self",)).select_related("action", "requested_by")
               .filter(pk=run_id, status=RunStatus.IN_PROGRESS, delivery_lease_until__lt=timezone.now()).first())
        if run is None:
            return False
        retry = redelivery(run)
        if retry is not None and run.attempts < delivery_max_attempts(run.action):
            task, countdown = retry
            logger.warning("run %s: the delivery lease of attempt %d expired; try %d in %.2fs", run.id, run.attempts,
                           run.attempts + 1, countdown)
            return run_delivery_retry(run=run, attempt=run.attempts, countdown=countdown, task=task)
        before = run_snapshot(run)
        attempts = f"{run.attempts} attempt{'s' if run.attempts != 1 else ''}"
        transition(run, RunStatus.FAILURE, label=f"Delivery lease expired after {attempts}")
        run.delivery_lease_until = None
        _ended(run)
        run.save()
        run_audit(actor=Actor.system(), run=run, verb=audit_choices.RUN_UPDATED, before=before, after=run_snapshot(run))
        return True


@transaction.atomic
def run_record_response(*, run, response, payload=None, revealed=()) -> Run:
    """Store what a backend sent (rendered for storage: see actions.templating) and what it received, both
    scrubbed of secret values and of `revealed` (text the backend rendered from secrets). Not audited on its
    own: it is delivery detail, shown on the run; the outcome is audited by run_finish or the reporter.
    Recording a payload also marks the delivery as begun (see `run_dispatch_claim`)."""
    run = Run.objects.select_for_update().get(pk=run.pk)
    fields = ["response", "updated_at"]
    response, payload = _stored([response, payload], revealed)
    run.response = response
    if payload is not None:
        run.payload = payload
        fields.append("payload")
    run.save(update_fields=fields)
    return run


@transaction.atomic
def run_record_published(*, run, delivery, payload) -> bool:
    """A Kafka backend's publish was acknowledged: store where it landed (`delivery`: topic, partition, offset) and
    what was sent (rendered for storage), and log it on the run. Delivery detail, not audited, like
    run_record_response. False (nothing stored) when an earlier attempt already published the run."""
    locked = Run.objects.select_for_update().get(pk=run.pk)
    if locked.published_to is not None:
        return False
    locked.published_to = {**delivery, "at": instant_text(timezone.now())}
    locked.payload = _stored(payload)
    locked.save(update_fields=["published_to", "payload", "updated_at"])
    RunLog.objects.create(run=locked, message=f"Published to {delivery['topic']} at offset {delivery['offset']} "
                                              f"(partition {delivery['partition']}).")
    run.published_to, run.payload = locked.published_to, locked.payload
    return True


def run_time_out(*, run_id) -> Run | None:
    """Fail an IN_PROGRESS run whose timeout passed without a report (the beat task's service)."""
    with transaction.atomic():
        run = (Run.objects.select_for_update(skip_locked=True, of=("self",)).select_related("action", "requested_by")
               .filter(pk=run_id, status=RunStatus.IN_PROGRESS, timeout_at__lte=timezone.now()).first())
        if run is None:
            return None
        before = run_snapshot(run)
        took = timedelta(seconds=run.action.run_timeout_seconds or DEFAULT_RUN_TIMEOUT_SECONDS)
        transition(run, RunStatus.FAILURE, label=f"Timed out after {took} without a report")
        run.save()
        run_audit(actor=Actor.system(), run=run, verb=audit_choices.RUN_UPDATED, before=before, after=run_snapshot(run))
        return run


# --- dispatch ------------------------------------------------------------------------------------

def run_dispatch_claim(*, run_id) -> bool:
    """Claim an IN_PROGRESS run for delivery: one UPDATE, so of two concurrent claims one wins, and a run is
    claimed once. The claim begins attempt 1 and its delivery lease: a worker that dies after claiming is
    found by `run_delivery_leases_expire`, never by claiming again."""
    return Run.objects.filter(pk=run_id, status=RunStatus.IN_PROGRESS, dispatched_at__isnull=True).update(
        dispatched_at=timezone.now(), attempts=F("attempts") + 1, delivery_lease_until=_lease_end()) == 1


# --- the run_id link from the catalog ------------------------------------------------------------

def run_reference_check(run_id) -> None:
    """Registered with portal.events: entities may be written or deleted for IN_PROGRESS runs only."""
    if not Run.objects.filter(pk=run_id, status=RunStatus.IN_PROGRESS).exists():
        raise ValidationFailed(f"run {run_id} is not in progress", path="run_id")


@transaction.atomic
def run_link_entity(*, run_id, blueprint_identifier, entity_identifier) -> Run | None:
    """Make the entity a CREATE run wrote (with its run_id) the run's result entity; the first one wins."""
    run = (Run.objects.select_for_update(of=("self",)).select_related("action", "requested_by")
           .filter(pk=run_id, action__operation=Operation.CREATE, result_entity__isnull=True).first())
    if run is None or run.action.blueprint_identifier != blueprint_identifier:
        return None
    entity = Entity.objects.filter(blueprint__identifier=blueprint_identifier, identifier=entity_identifier).first()
    if entity is None:
        return None
    before = run_snapshot(run)
    run.result_entity = entity
    run.save(update_fields=["result_entity", "updated_at"])
    after = {**run_snapshot(run), "resultEntity": entity.identifier}
    run_audit(actor=Actor.system(), run=run, verb=audit_choices.RUN_UPDATED, before={**before, "resultEntity": None},
           after=after, message=f"Entity {entity_identifier!r} is the result of this run.")
    return run


def entity_changes_link_runs(changes):
    """portal.events subscriber (ENTITY_CHANGED, in the writer's transaction): link CREATE runs to the entity they wrote.
    Part of the change: the link announces RUN_CHANGED, which starts the entity's TTL (actions/services/ttl.py) in the
    same transaction, so an entity a run wrote never exists without its TTL, and a failure there fails the write."""
    for change in changes:
        if change.get("runId") and change.get("action") in ("CREATE", "UPDATE"):
            run_link_entity(run_id=change["runId"], blueprint_identifier=change["blueprint"],
                            entity_identifier=change["identifier"])
