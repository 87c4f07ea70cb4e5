"""The home page (/): what is mine and what waits on me — my entities, my environments and their time left, my
recent runs, the approvals waiting on me, and the locks in force. Every section is a capped, permission-filtered
read, so the page costs the same number of queries whatever the rows."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from actions.selectors.approvals import approvals_waiting_count_and_first
from actions.selectors.runs import runs_requested_by_visible_to
from catalog.selectors.entities import entities_owned_by_visible_to
from web.action_pages.environments import environment_rows
from web.action_pages.locks import locks_in_force

SECTION_SIZE = 10
APPROVALS_SHOWN = 5


@login_required
def home_page(request):
    user = request.user
    approvals_count, approvals = approvals_waiting_count_and_first(user, limit=APPROVALS_SHOWN)
    return render(request, "actions/home.html", {
        "entities": entities_owned_by_visible_to(user, limit=SECTION_SIZE),
        "environments": environment_rows(user, limit=SECTION_SIZE),
        "runs": runs_requested_by_visible_to(user, limit=SECTION_SIZE),
        "approvals_count": approvals_count,
        "approvals": approvals,
        "locks": locks_in_force(user),
    })
