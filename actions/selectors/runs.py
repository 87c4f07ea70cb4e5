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
