"""/runs/ (my runs), /runs/<id>/ (one run) and /runs/<id>/live (the part of the run page that follows it)."""
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from actions.choices import RunStatus
from actions.selectors.runs import (run_decisions, run_log_lines, run_visible_to, run_waits_on,
                                    runs_requested_by_visible_to)
from actions.serializers import run_waiting_for
from actions.services.approvals import approval_mode
from actions.state import TERMINAL
from catalog.selectors.audit_events import audit_events_about_visible_to
from web.catalog_pages.columns import entity_url
from web.catalog_pages.values import time_left_text
from portal.api.pagination import cursor_decode, cursor_encode
from portal.datetimes import instant_of
from portal.errors import ValidationFailed
from web.pages import page_size

LIVE_STATUSES = (RunStatus.IN_PROGRESS, RunStatus.WAITING_FOR_APPROVAL)
LOG_LIMIT = 1000  # the newest lines shown on the page; the API has them all
AUDIT_LIMIT = 100
RUN_PAGE_RELATED = ("action", "requested_by", "entity__blueprint", "result_entity__blueprint")
ORIGIN_TEXT = {"UI": "the portal's web pages", "API": "the API", "AUTOMATION": "an automation"}


@dataclass
class InputRow:
    key: str
    label: str
    text: str
    multiline: bool
    links: list  # [(text, url)] for entity inputs


def input_rows(run):
    """The run's inputs with their titles from the action's definition; entity inputs linked to the catalog."""
    user_inputs = (run.action.trigger or {}).get("userInputs") or {}
    definitions = user_inputs.get("properties") or {}
    values = run.properties or {}
    order = [key for key in (user_inputs.get("order") or []) if key in values]
    rows = []
    for key in order + [key for key in values if key not in order]:  # the form's order (jsonb keeps its own)
        value = values[key]
        definition = definitions.get(key) if isinstance(definitions.get(key), dict) else {}
        item = definition if definition.get("format") == "entity" else (definition.get("items") or {})
        links = []
        if item.get("format") == "entity" and item.get("blueprint"):
            linked = value if isinstance(value, list) else [value]
            links = [(v, entity_url(item["blueprint"], v)) for v in linked if isinstance(v, str)]
        if isinstance(value, (dict, list)):
            text = json.dumps(value, indent=2)
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        else:
            text = "" if value is None else str(value)
        rows.append(InputRow(key, definition.get("title") or key, text, "\n" in text or isinstance(value, (dict, list)),
                             links))
    return rows


def run_links(run):
    """(text, href or "") of the run's links; only http(s) addresses become links (a reporter could send any string)."""
    result = []
    for link in run.links or []:
        scheme = urlsplit(link).scheme.lower() if isinstance(link, str) else ""
        result.append((link, link if scheme in ("http", "https") else ""))
    return result


def _run_get(user, run_id):
    run = run_visible_to(user, run_id, related=RUN_PAGE_RELATED)
    if run is None:
        raise Http404(f"Run {run_id!r} was not found.")
    return run


def approval_state(run, decisions):
    """None when the run needed no approval; else PENDING / APPROVED / DECLINED (and EXPIRED for a wait
    that ran out), the mode and the decisions so far."""
    if run.required_approval in (False, None):
        return None
    if run.status == RunStatus.DECLINED and not any(d.decision == "DECLINE" for d in decisions):
        state = "EXPIRED" if "expired" in (run.status_label or "").lower() else "DECLINED"
    elif run.status == RunStatus.DECLINED or any(d.decision == "DECLINE" for d in decisions):
        state = "DECLINED"
    elif run.status == RunStatus.WAITING_FOR_APPROVAL:
        state = "PENDING"
    else:
        state = "APPROVED"
    return {"state": state, "mode": approval_mode(run.required_approval), "decisions": decisions,
            "deadline": run.approval_deadline if state == "PENDING" else None,
            "time_left": time_left_text(run.approval_deadline) if state == "PENDING" and run.approval_deadline else ""}


def _live_context(run, user):
    """What the live part shows: status, approval state, links, result, summary, the newest logs and the audit
    trail (so a followed run's page is whole when it ends)."""
    decisions = run_decisions(run)
    logs = run_log_lines(run, limit=LOG_LIMIT + 1)
    return {
        "run": run, "following": run.status in LIVE_STATUSES, "approval": approval_state(run, decisions),
        "waiting_for": run_waiting_for(run),
        "links": run_links(run), "logs": list(reversed(logs[:LOG_LIMIT])), "logs_cut": len(logs) > LOG_LIMIT,
        "result_url": entity_url(run.result_entity.blueprint.identifier, run.result_entity.identifier)
        if run.result_entity_id else "",
        "audit": audit_events_about_visible_to(user, resource_type="run", identifier=run.id, limit=AUDIT_LIMIT),
    }


@login_required
@require_GET
def run_detail(request, run_id):
    user = request.user
    run = _run_get(user, run_id)
    context = _live_context(run, user)
    context.update({
        "inputs": input_rows(run),
        "entity_url": entity_url(run.entity.blueprint.identifier, run.entity.identifier) if run.entity_id else "",
        "origin_text": ORIGIN_TEXT.get(run.origin, run.origin),
        "may_decide": run.status == RunStatus.WAITING_FOR_APPROVAL
        and run_waits_on(user, run),
    })
    return render(request, "actions/run_detail.html", context)


@login_required
@require_GET
def run_live(request, run_id):
    """The live part alone; it carries data-live-url while the run may still change."""
    return render(request, "actions/run_live.html", _live_context(_run_get(request.user, run_id), request.user))


def _cursor(raw):
    """`?before=` of my runs: the (created_at, id) of the last run of the previous page."""
    try:
        value = cursor_decode(raw, "before")
    except ValidationFailed as exc:
        raise BadRequest(exc.message)
    if value is None:
        return None
    moment = instant_of(value[0]) if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) else None
    if moment is None or not isinstance(value[1], str):
        raise BadRequest("before: is not a cursor of this page")
    return moment, value[1]


@login_required
@require_GET
def run_list(request):
    """Runs I requested, newest first, keyset-paged on (created_at, id) so a page costs the same anywhere."""
    limit = page_size(request, default=50, maximum=200)
    status = request.GET.get("status") or ""
    if status and status not in RunStatus.values:
        raise BadRequest(f"status: must be one of {list(RunStatus.values)}")
    before = _cursor(request.GET.get("before"))
    rows = runs_requested_by_visible_to(request.user, limit=limit + 1, status=status, before=before)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = cursor_encode([rows[-1].created_at.isoformat(), rows[-1].id]) if more and rows else ""
    return render(request, "actions/run_list.html", {
        "runs": [(run, entity_url(run.blueprint_identifier, run.entity_identifier) if run.entity_id else "")
                 for run in rows],
        "next_cursor": next_cursor, "status": status, "statuses": RunStatus.values, "limit": limit,
        "first_page": before is None, "terminal": TERMINAL,
    })
