"""Approval decisions on waiting runs, and the expiry of waits nobody decided."""
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from actions.access import can_approve, eligible_approvers
from actions.choices import Decision, RunStatus
from actions.models import Approval, Run
from actions.services.runs import run_audit, run_started, run_snapshot
from catalog.selectors.entities import entity_team_ids
from actions.state import transition
from audit import choices as audit_choices
from portal.actor import Actor
from portal.errors import Conflict, Forbidden, ValidationFailed


def approval_mode(required_approval) -> str:
    """`true` and `{"type": "ANY"}` need one approval; `{"type": "ALL"}` every eligible approver's."""
    if isinstance(required_approval, dict) and str(required_approval.get("type", "")).upper() == "ALL":
        return "ALL"
    return "ANY"


def approval_text(required_approval) -> str:
    """What a run that carries `required_approval` waits for, in words ("" when it waits for nobody)."""
    if required_approval in (False, None, {}):
        return ""
    if approval_mode(required_approval) == "ALL":
        return "Runs of this action wait until every approver has approved."
    return "Runs of this action wait for an approver's decision."


@transaction.atomic
def approval_decide(*, actor, run, decision, description="") -> Run:
    """Record one approver's decision on a waiting run and move the run on when it is decided.
    The run row is locked first, so of two simultaneous decisions one moves the run and the other
    finds it decided (409)."""
    if decision not in Decision.values:
        raise ValidationFailed(f"must be APPROVE or DECLINE, got {decision!r}", path="status")
    if description is not None and not isinstance(description, str):
        raise ValidationFailed("must be a string", path="description")
    description = description or ""
    user = actor.user
    if user is None:
        raise Forbidden("Only a user may approve or decline a run.")
    run = Run.objects.select_for_update(of=("self",)).select_related("action", "requested_by").get(pk=run.pk)
    if run.status != RunStatus.WAITING_FOR_APPROVAL:
        raise Conflict(f"The decision on run {run.id} was already taken: it is {run.status}.")
    if user.pk == run.requested_by_id:
        raise Forbidden("You cannot approve your own run.")
    team_ids = entity_team_ids(run.entity) if run.entity_id else set()
    if not can_approve(user, run.action, team_ids):
        raise Forbidden(f"You may not approve runs of action {run.action.identifier!r}.")
    if Approval.objects.filter(run=run, approver=user).exists():
        raise Conflict(f"You already decided on run {run.id}.")

    Approval.objects.create(run=run, approver=user, decision=decision, description=description)
    run_audit(actor=actor, run=run, verb=audit_choices.RUN_APPROVAL_DECIDED,
           after={"approver": user.email, "decision": decision, "description": description or None},
           message=f"{user.email} {'approved' if decision == Decision.APPROVE else 'declined'} run {run.id}.")

    before = run_snapshot(run)
    if decision == Decision.DECLINE:
        transition(run, RunStatus.DECLINED, label=f"Declined by {user.email}" + (f": {description}" if description else ""))
    elif approval_mode(run.required_approval) == "ANY" or _all_approved(run, team_ids):
        transition(run, RunStatus.IN_PROGRESS, label=f"Approved by {user.email}")
        run_started(run)
    else:
        return run
    run.save()
    run_audit(actor=actor, run=run, verb=audit_choices.RUN_UPDATED, before=before, after=run_snapshot(run))
    return run


def _all_approved(run, team_ids) -> bool:
    needed = set(eligible_approvers(run.action, team_ids, exclude=run.requested_by).values_list("pk", flat=True))
    approved = set(Approval.objects.filter(run=run, decision=Decision.APPROVE).values_list("approver_id", flat=True))
    return needed <= approved


def approval_expire(*, run_id) -> Run | None:
    """Decline a waiting run whose approval deadline passed (the beat task's service)."""
    with transaction.atomic():
        run = (Run.objects.select_for_update(skip_locked=True, of=("self",)).select_related("action", "requested_by")
               .filter(pk=run_id, status=RunStatus.WAITING_FOR_APPROVAL, approval_deadline__lte=timezone.now()).first())
        if run is None:
            return None
        before = run_snapshot(run)
        waited = timedelta(seconds=run.action.approval_timeout_seconds) if run.action.approval_timeout_seconds \
            else run.approval_deadline - run.created_at
        transition(run, RunStatus.DECLINED, label=f"Approval expired after {waited}")
        run.save()
        run_audit(actor=Actor.system(), run=run, verb=audit_choices.RUN_UPDATED, before=before, after=run_snapshot(run))
        return run
