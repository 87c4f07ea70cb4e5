"""The one state machine for runs. Every status change goes through `transition`."""
from django.utils import timezone

from actions.choices import RunStatus
from portal.errors import Conflict

S = RunStatus
TERMINAL = frozenset({S.SUCCESS, S.FAILURE, S.DECLINED})
ALLOWED = {
    # FAILURE: the requester (or an admin) cancels a run still waiting for its approval.
    S.WAITING_FOR_APPROVAL: frozenset({S.IN_PROGRESS, S.DECLINED, S.FAILURE}),
    S.IN_PROGRESS: frozenset({S.SUCCESS, S.FAILURE}),
    S.SUCCESS: frozenset(),
    S.FAILURE: frozenset(),
    S.DECLINED: frozenset(),
}


def can_transition(current, to) -> bool:
    return to in ALLOWED[current]


def is_repeat(run, to) -> bool:
    """Reporting the final status a run already has again: accepted as a no-op (clients retry a PATCH whose
    answer they lost), not a conflict."""
    return to == run.status and to in TERMINAL


def transition(run, to, *, label=None):
    """Move a locked run row to `to` (the caller saves it and records the audit event). Illegal → 409."""
    if run.status_locked and run.status in TERMINAL:
        raise Conflict(f"Run {run.id} ended with {run.status} by a termination log; its status is final.")
    if not can_transition(run.status, to):
        raise Conflict(f"Run {run.id} cannot go from {run.status} to {to}.", code="illegal_transition")
    before = run.status
    run.status = to
    now = timezone.now()
    if to == S.IN_PROGRESS and run.started_at is None:
        run.started_at = now
    if to in TERMINAL:
        run.ended_at = now
    if label is not None:
        run.status_label = label[:500]
    return before
