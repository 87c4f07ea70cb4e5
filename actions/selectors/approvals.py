"""Permission-filtered reads of approvals: the queue of runs waiting on a user and the decisions they took."""
from django.db.models import Prefetch

from actions.access import approvable_action_ids
from actions.models import Action, Approval, Run
from actions.selectors.runs import approvals_waiting_on, runs_visible_to
from catalog.access import user_team_ids


def approval_queue_visible_to(user, *, limit):
    """The first `limit` runs waiting on the user (approvals_waiting_on, oldest first), each with its decisions so
    far prefetched in `run.approvals.all()`, in the order they were taken."""
    decisions = Prefetch("approvals", queryset=Approval.objects.select_related("approver").order_by("id"))
    return list(approvals_waiting_on(user).prefetch_related(decisions)[:limit])


def approvals_waiting_count_and_first(user, *, limit):
    """(how many runs wait on the user, the first `limit` of them oldest first): approvals_waiting_on."""
    waiting = approvals_waiting_on(user)
    return waiting.count(), list(waiting[:limit])


def decisions_taken_by(user, *, limit):
    """The user's newest `limit` decisions on runs they may see, each run with its action and requester."""
    return list(Approval.objects.filter(approver=user, run__in=runs_visible_to(user).values("pk"))
                .select_related("run__action", "run__requested_by").order_by("-at", "-id")[:limit])


def may_ever_approve(user):
    """Whether any action's runs could ever wait on the user: granted `approve` on an action, or in a team while some
    action lets the owning team approve."""
    ids = approvable_action_ids(user)
    if ids is None or ids:
        return True
    return bool(user_team_ids(user)) and Action.objects.filter(permission_settings__ownedByTeam__approve=True).exists()


def run_as_decided(run):
    """(the run as stored now, its decisions in the order they were taken): after a decision was refused as taken
    already, who took it. For a run the caller has read through runs_visible_to."""
    run = Run.objects.get(pk=run.pk)
    return run, list(run.approvals.select_related("approver").order_by("id"))
