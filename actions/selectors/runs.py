"""Permission-filtered reads of runs.

Who sees a run (decided here, used by every run endpoint): admins see all runs; anyone else sees
the runs they requested, the runs they may decide (granted `approve` on the action, or `ownedByTeam`
approve on an entity their team owns), and the runs whose entity — or, for CREATE runs, whose result
entity — they may read in the catalog. All of it is one filtered query.
"""
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from actions.access import approvable_action_ids
from actions.choices import RunStatus
from actions.models import Approval, Run
from catalog.access import is_admin, user_team_ids
from catalog.models import Entity
from catalog.selectors.entities import entities_visible_to

RUN_RELATED = ("action", "requested_by", "entity", "result_entity")


def _owned_by_team_approve(user):
    """Runs of actions with ownedByTeam approve whose entity one of the user's teams owns."""
    team_ids = user_team_ids(user)
    if not team_ids:
        return Q(pk__in=[])
    owned = Entity.teams.through.objects.filter(entity_id=OuterRef("entity_id"), team_id__in=team_ids)
    return Q(action__permission_settings__ownedByTeam__approve=True) & Exists(owned)


def _may_decide(user):
    action_ids = approvable_action_ids(user)
    if action_ids is None:
        return Q()
    return Q(action_id__in=action_ids) | _owned_by_team_approve(user)


def runs_visible_to(user, queryset=None):
    queryset = Run.objects.all() if queryset is None else queryset
    if user is None or not user.is_authenticated:
        return queryset.none()
    if is_admin(user):
        return queryset
    readable = entities_visible_to(user).values("pk")
    return queryset.filter(
        Q(requested_by=user) | _may_decide(user) | Q(entity_id__in=readable) | Q(result_entity_id__in=readable)
    )


def run_visible_to(user, run_id, *, related=RUN_RELATED):
    """The run `run_id` if the user may see it, else None; `related` loaded with it."""
    return runs_visible_to(user, Run.objects.filter(pk=run_id)).select_related(*related).first()


def runs_requested_by_visible_to(user, *, limit, status=None, before=None):
    """The user's own runs, newest first, their actions loaded: the first `limit`, of one `status` if given, older
    than `before` (the (created_at, id) of the last run of the previous page) if given."""
    runs = runs_visible_to(user).filter(requested_by=user)
    if status:
        runs = runs.filter(status=status)
    if before is not None:
        moment, last_id = before
        runs = runs.filter(Q(created_at__lt=moment) | Q(created_at=moment, id__lt=last_id))
    return list(runs.select_related("action").order_by("-created_at", "-id")[:limit])


def runs_of_entity_visible_to(user, entity, *, limit):
    """The newest `limit` runs on the entity or that created it, that the user may see."""
    runs = Run.objects.filter(Q(entity=entity) | Q(result_entity=entity))
    return list(runs_visible_to(user, runs).select_related("action", "requested_by").order_by("-created_at")[:limit])


def run_decisions(run):
    """The approvals and declines of a run the caller may see, in the order they were taken."""
    return list(run.approvals.select_related("approver").order_by("id"))


def run_log_lines(run, *, limit):
    """The newest `limit` log lines of a run the caller may see, newest first."""
    return list(run.logs.order_by("-id")[:limit])


def run_status_reload(run):
    """Reload the run's status and status label (a worker, or eager Celery, may have moved it on since)."""
    run.refresh_from_db(fields=["status", "status_label"])
    return run


def run_waits_on(user, run):
    """Whether the run waits for a decision the user may take (approvals_waiting_on's rule)."""
    return approvals_waiting_on(user, Run.objects.filter(pk=run.pk)).exists()


def approvals_waiting_on(user, queryset=None):
    """Waiting runs the user may decide and has not decided yet (never their own), oldest first."""
    queryset = Run.objects.all() if queryset is None else queryset
    if user is None or not user.is_authenticated:
        return queryset.none()
    decided = Approval.objects.filter(run_id=OuterRef("pk"), approver=user)
    return (queryset.filter(_may_decide(user), status=RunStatus.WAITING_FOR_APPROVAL)
            .exclude(requested_by=user).exclude(Exists(decided))
            .select_related(*RUN_RELATED).order_by("created_at", "id"))


def time_left_seconds(run, now=None):
    if run.approval_deadline is None:
        return None
    return max(0, int((run.approval_deadline - (now or timezone.now())).total_seconds()))
