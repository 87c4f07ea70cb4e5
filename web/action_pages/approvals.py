"""/approvals/ (runs waiting on me, oldest first) and POST /approvals/<run id>/decide."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from actions.access import approvable_action_ids
from actions.choices import Decision
from actions.models import Action, Approval, Run
from web.action_pages.runs import input_rows, approval_state
from actions.selectors.runs import approvals_waiting_on, runs_visible_to
from catalog.access import user_team_ids
from web.catalog_pages.columns import entity_url
from portal.actor import Actor, AuditOrigin
from portal.errors import Conflict, PortalError

QUEUE_LIMIT = 100
RECENT_LIMIT = 10
DECISION_WORDS = {Decision.APPROVE: "approved", Decision.DECLINE: "declined"}


def _when(moment):
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _is_approver(user):
    """Whether any action's runs could ever wait on the user (for the empty state's wording)."""
    ids = approvable_action_ids(user)
    if ids is None or ids:
        return True
    return bool(user_team_ids(user)) and Action.objects.filter(permission_settings__ownedByTeam__approve=True).exists()


def _queue(request, *, error_run="", error="", reason="", status=200):
    user = request.user
    decisions = Prefetch("approvals", queryset=Approval.objects.select_related("approver").order_by("id"))
    runs = list(approvals_waiting_on(user).prefetch_related(decisions)[: QUEUE_LIMIT + 1])
    items = []
    for run in runs[:QUEUE_LIMIT]:
        items.append({
            "run": run, "inputs": input_rows(run), "approval": approval_state(run, list(run.approvals.all())),
            "entity_url": entity_url(run.blueprint_identifier, run.entity_identifier) if run.entity_id else "",
            "error": error if run.id == error_run else "", "reason": reason if run.id == error_run else "",
        })
    recent = list(Approval.objects.filter(approver=user, run__in=runs_visible_to(user).values("pk"))
                  .select_related("run__action", "run__requested_by").order_by("-at", "-id")[:RECENT_LIMIT])
    return render(request, "actions/approvals.html", {
        "items": items, "more": len(runs) > QUEUE_LIMIT, "recent": recent, "is_approver": bool(items) or _is_approver(user),
        "top_error": error if error and not any(item["error"] for item in items) else "",
    }, status=status)


@login_required
@require_GET
def approval_queue(request):
    return _queue(request)


def _already_decided(run, user):
    """Who took the decision the user just tried to take, for the message that replaces it."""
    run = Run.objects.get(pk=run.pk)
    decisions = list(run.approvals.select_related("approver").order_by("id"))
    mine = next((d for d in decisions if d.approver_id == user.pk), None)
    if mine is not None and run.status == "WAITING_FOR_APPROVAL":
        return f"You already {DECISION_WORDS[mine.decision]} run {run.id} on {_when(mine.at)}; it still waits for other approvers."
    others = [d for d in decisions if d.approver_id != user.pk]
    if others:
        said = "; ".join(f"{d.approver.email} {DECISION_WORDS[d.decision]} it on {_when(d.at)}"
                         + (f" (“{d.description}”)" if d.description else "") for d in others)
        return f"Run {run.id} was already decided: {said}. It is now {run.status}. Your decision was not recorded."
    label = f" ({run.status_label})" if run.status_label else ""
    return f"Run {run.id} no longer waits for a decision: it is {run.status}{label}. Your decision was not recorded."


def _next_url(request):
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return "/approvals/"


@login_required
@require_POST
def approval_decide(request, run_id):
    """Approve or decline (with an optional reason); a decision someone else took first is shown, not replaced."""
    from actions.services.approvals import approval_decide as decide

    user = request.user
    run = runs_visible_to(user, Run.objects.filter(pk=run_id)).select_related("action", "requested_by").first()
    if run is None:
        raise Http404(f"Run {run_id!r} was not found.")
    decision = request.POST.get("decision", "")
    reason = request.POST.get("reason", "").strip()
    try:
        run = decide(actor=Actor(user=user, origin=AuditOrigin.UI), run=run, decision=decision, description=reason)
    except Conflict:
        messages.error(request, _already_decided(run, user))
        return redirect(_next_url(request))
    except PortalError as exc:
        return _queue(request, error_run=run.id, error=exc.message, reason=reason, status=exc.status)
    word = DECISION_WORDS[decision]
    messages.success(request, f"You {word} run {run.id} of {run.action.title}"
                              f" requested by {run.requested_by.email if run.requested_by else 'nobody'}; it is now {run.get_status_display()}.")
    return redirect(_next_url(request))
