"""/approvals/ (runs waiting on me, oldest first) and POST /approvals/<run id>/decide."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from actions.choices import Decision
from actions.selectors.approvals import approval_queue_visible_to, decisions_taken_by, may_ever_approve, run_as_decided
from actions.selectors.runs import run_visible_to
from portal.actor import Actor, AuditOrigin
from portal.errors import Conflict, PortalError
from web.action_pages.runs import approval_state, input_rows
from web.catalog_pages.columns import entity_url

QUEUE_LIMIT = 100
RECENT_LIMIT = 10
DECISION_WORDS = {Decision.APPROVE: "approved", Decision.DECLINE: "declined"}


def _when(moment):
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _queue(request, *, error_run="", error="", reason="", status=200):
    user = request.user
    runs = approval_queue_visible_to(user, limit=QUEUE_LIMIT + 1)
    items = []
    for run in runs[:QUEUE_LIMIT]:
        items.append({
            "run": run, "inputs": input_rows(run), "approval": approval_state(run, list(run.approvals.all())),
            "entity_url": entity_url(run.blueprint_identifier, run.entity_identifier) if run.entity_id else "",
            "error": error if run.id == error_run else "", "reason": reason if run.id == error_run else "",
        })
    recent = decisions_taken_by(user, limit=RECENT_LIMIT)
    return render(request, "actions/approvals.html", {
        "items": items, "more": len(runs) > QUEUE_LIMIT, "recent": recent, "is_approver": bool(items) or may_ever_approve(user),
        "top_error": error if error and not any(item["error"] for item in items) else "",
    }, status=status)


@login_required
@require_GET
def approval_queue(request):
    return _queue(request)


def _already_decided(run, user):
    """Who took the decision the user just tried to take, for the message that replaces it."""
    run, decisions = run_as_decided(run)
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
    run = run_visible_to(user, run_id, related=("action", "requested_by"))
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
