"""The home page (/): what is mine and what waits on me — my entities, my environments and their time left, my
recent runs, the approvals waiting on me, and the locks in force. Every section is a capped, permission-filtered
read, so the page costs the same number of queries whatever the rows."""
from django.contrib.auth.decorators import login_required
from django.db.models import Exists, OuterRef, Q
from django.shortcuts import render

from web.action_pages.environments import environment_rows
from web.action_pages.locks import locks_in_force
from actions.selectors.runs import approvals_waiting_on, runs_visible_to
from catalog.access import user_team_ids
from catalog.models import Entity
from catalog.selectors.entities import entities_visible_to

SECTION_SIZE = 10
APPROVALS_SHOWN = 5


def entities_owned_by(user, *, limit=SECTION_SIZE):
    """The newest entities the user may read and owns: through one of their teams, or created by them."""
    label = user.email or user.get_username()
    condition = Q(created_by=label) if label else Q(pk__in=[])
    team_ids = user_team_ids(user)
    if team_ids:
        condition |= Q(Exists(Entity.teams.through.objects.filter(entity_id=OuterRef("pk"), team_id__in=team_ids)))
    queryset = Entity.objects.filter(condition, is_stub=False).select_related("blueprint").order_by("-created_at", "-id")
    return list(entities_visible_to(user, queryset)[:limit])


@login_required
def home_page(request):
    user = request.user
    waiting = approvals_waiting_on(user)
    runs = (runs_visible_to(user).filter(requested_by=user).select_related("action")
            .order_by("-created_at", "-id")[:SECTION_SIZE])
    return render(request, "actions/home.html", {
        "entities": entities_owned_by(user),
        "environments": environment_rows(user, limit=SECTION_SIZE),
        "runs": list(runs),
        "approvals_count": waiting.count(),
        "approvals": list(waiting[:APPROVALS_SHOWN]),
        "locks": locks_in_force(user),
    })
