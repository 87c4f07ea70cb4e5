"""Locks (/locks/): every service × environment with its lock state — rows are the Components that run
somewhere, columns the environments (production, staging, development, then others) — and lock / unlock with
a reason. A lock change is a run of the starter DAY-2 actions `lock_service` / `unlock_service` (on the running
service `<service>-<environment>`) or `lock_environment` / `unlock_environment` (on the environment), requested
through run_request like any other run, so it is permission-checked, audited and announced the same way; the
buttons are offered only to those who may run them (actions.access.can_execute)."""
import re
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from actions.choices import RunOrigin, RunStatus
from actions.selectors.locks import LOCK_ACTIONS, lock_actions
from actions.selectors.runs import run_status_reload
from actions.services.runs import run_request
from catalog.selectors.deployments import ENVIRONMENT, RUNNING_SERVICE, running_services_visible_to
from catalog.selectors.locks import environments_visible_to, locked_entities_visible_to, team_ids_by_identifier
from catalog.services.deployments import running_service_identifier
from portal.actor import Actor, AuditOrigin
from portal.errors import Forbidden, NotFound, PortalError, ValidationFailed
from portal.datetimes import instant_field, instant_of, instant_text
from web.action_pages.environments import RunnableActions, run_link

LOCKS_IN_FORCE_SHOWN = 20
RUN_STATE_WORDS = {RunStatus.SUCCESS: "is done", RunStatus.FAILURE: "failed", RunStatus.IN_PROGRESS: "is in progress",
                   RunStatus.WAITING_FOR_APPROVAL: "waits for approval", RunStatus.DECLINED: "was declined"}


# --- reads ----------------------------------------------------------------------------------------------------

def lock_view(lock):
    """A lock dict (the selectors' shape: locked, reason, by, at, until) with readable times added."""
    at, until = instant_of(lock.get("at")), instant_of(lock.get("until"))
    return {**lock, "locked": lock.get("locked") is True, "at_time": at, "until_time": until,
            "until_iso": instant_text(until) if until else ""}


def lock_of_properties(properties):
    return lock_view({"locked": properties.get("locked"), "reason": properties.get("lockReason"),
                      "by": properties.get("lockedBy"), "at": properties.get("lockedAt"),
                      "until": properties.get("lockedUntil")})


def locks_in_force(user, *, limit=LOCKS_IN_FORCE_SHOWN):
    """Locked environments, then locked running services, that the user may read."""
    return [{"scope": "environment" if e.blueprint.identifier == ENVIRONMENT else "service", "entity": e,
             "name": e.title or e.identifier, **lock_of_properties(e.properties)}
            for e in locked_entities_visible_to(user, limit=limit)]


# --- the page's model ------------------------------------------------------------------------------------------

@dataclass
class LockForm:
    """One lock/unlock form of a cell; `key` ties a refused POST back to the form it came from."""

    scope: str
    op: str
    action: object  # actions.models.Action
    service: str = ""
    environment: str = ""
    target_label: str = ""
    reason: str = ""
    until: str = ""
    error: str = ""
    reason_error: str = ""
    until_error: str = ""

    @property
    def key(self):
        return f"{self.op}:{self.scope}:{self.service}:{self.environment}"

    @property
    def dom_id(self):
        return re.sub(r"[^A-Za-z0-9_-]", "_", self.key.replace(":", "-"))

    @property
    def with_until(self):
        return "until" in ((self.action.trigger.get("userInputs") or {}).get("properties") or {})

    @property
    def is_open(self):
        return bool(self.error or self.reason_error or self.until_error)


def _forms(scope, lock, actions, runnable, team_ids, **target):
    """The lock or unlock form a cell offers (the one that changes its state), if the user may run it."""
    op = "unlock" if lock["locked"] else "lock"
    action = actions.get((scope, op))
    if action is None or not runnable.allows(action, team_ids):
        return []
    return [LockForm(scope=scope, op=op, action=action, **target)]


def locks_board(user):
    """(environment columns, service rows, whether any lock action is installed), in a constant number of queries.
    A running service is listed only with its service and environment readable too (the selector's rule), so
    every cell falls under a column."""
    environments = environments_visible_to(user)
    running = running_services_visible_to(user)
    actions = lock_actions()
    runnable = RunnableActions(user)
    runnable.prime(actions.values())  # the number of queries then depends on no lock state
    service_teams = team_ids_by_identifier(RUNNING_SERVICE, {r["identifier"] for r in running})
    environment_teams = team_ids_by_identifier(ENVIRONMENT, [e.identifier for e in environments])
    columns = []
    for environment in environments:
        lock = lock_of_properties(environment.properties)
        columns.append({
            "identifier": environment.identifier, "title": environment.title or environment.identifier,
            "type": environment.properties.get("type"), "lock": lock,
            "forms": _forms("environment", lock, actions, runnable, environment_teams.get(environment.identifier, set()),
                            environment=environment.identifier,
                            target_label=f"environment {environment.title or environment.identifier}"),
        })
    rows = {}
    for item in running:
        service = item["service"]
        row = rows.setdefault(service["identifier"], {"identifier": service["identifier"],
                                                      "title": service["title"] or service["identifier"], "cells": {}})
        environment = item["environment"]["identifier"]
        lock = lock_view(item["lock"])
        row["cells"][environment] = {
            "running": item, "lock": lock,
            "forms": _forms("service", lock, actions, runnable, service_teams.get(item["identifier"], set()),
                            service=service["identifier"], environment=environment,
                            target_label=f"{row['title']} in {environment}"),
        }
    for row in rows.values():
        row["cells"] = [{"environment": c, **row["cells"].get(c["identifier"], {"running": None, "forms": []})}
                        for c in columns]
    return columns, list(rows.values()), bool(actions)


# --- views ----------------------------------------------------------------------------------------------------

def _board_forms(columns, rows):
    for column in columns:
        yield from column["forms"]
    for row in rows:
        for cell in row["cells"]:
            yield from cell["forms"]


def _render(request, *, status=200, refused=None, top_error=""):
    columns, rows, installed = locks_board(request.user)
    if refused is not None:
        for form in _board_forms(columns, rows):
            if form.key == refused.key:
                form.reason, form.until = refused.reason, refused.until
                form.error, form.reason_error, form.until_error = refused.error, refused.reason_error, refused.until_error
                break
        else:
            top_error = top_error or refused.error or refused.reason_error or refused.until_error
    return render(request, "actions/locks.html", {
        "columns": columns, "rows": rows, "installed": installed, "top_error": top_error,
    }, status=status)


def _until(raw):
    """The form's datetime-local (UTC, as the label says) → an ISO date-time with Z; None when empty."""
    raw = (raw or "").strip()
    if not raw:
        return None
    moment = instant_field(raw, "properties.until", query=True)
    if moment <= timezone.now():
        raise ValidationFailed("must be in the future", path="properties.until")
    return instant_text(moment)


def _place(form, exc):
    """Put each of the service's errors at the field its path names (`properties.reason`, `properties.until`),
    as its message alone; the others at the top of the form."""
    left = []
    for error in exc.errors:
        name = error.parts[1] if error.parts[:1] == ("properties",) and len(error.parts) > 1 else None
        if name in ("reason", "until"):
            shown = getattr(form, f"{name}_error", "")
            setattr(form, f"{name}_error", f"{shown}; {error.message}" if shown else error.message)
        else:
            left.append(str(error))
    if left:
        form.error = "; ".join(left)


@login_required
def locks_page(request):
    if request.method != "POST":
        return _render(request)
    post = request.POST
    scope, op = post.get("scope", ""), post.get("op", "")
    form = LockForm(scope=scope, op=op, action=None, service=post.get("service", ""),
                    environment=post.get("environment", ""), reason=post.get("reason", ""), until=post.get("until", ""))
    try:
        if (scope, op) not in LOCK_ACTIONS or not form.environment or (scope == "service" and not form.service):
            raise ValidationFailed("name a service and an environment, or an environment, to lock or unlock", path="scope")
        action = lock_actions().get((scope, op))
        if action is None:
            raise NotFound(f"{LOCK_ACTIONS[(scope, op)]!r} is not installed (manage.py load_starter adds it)", path="action")
        inputs = (action.trigger.get("userInputs") or {}).get("properties") or {}
        properties = {}
        if "reason" in inputs:
            properties["reason"] = form.reason.strip()
            if not properties["reason"]:
                del properties["reason"]  # the action's own `required` names it
        if "until" in inputs:
            until = _until(form.until)
            if until is not None:
                properties["until"] = until
        entity = (running_service_identifier(form.service, form.environment) if scope == "service" else form.environment)
        run = run_request(actor=Actor(user=request.user, origin=AuditOrigin.UI), action=action, properties=properties,
                          entity_identifier=entity, origin=RunOrigin.UI)
    except PortalError as exc:
        _place(form, exc)
        if isinstance(exc, Forbidden):
            return _render(request, status=exc.status, top_error=exc.message)
        return _render(request, status=exc.status, refused=form)
    what = (f"{form.service} in {form.environment}" if scope == "service" else f"environment {form.environment}")
    verb = "Lock" if op == "lock" else "Unlock"
    run = run_status_reload(run)  # a worker (or eager Celery) may have finished it already
    report = messages.error if run.status in (RunStatus.FAILURE, RunStatus.DECLINED) else messages.success
    report(request, format_html("{} of {} requested: {} {}.", verb, what, run_link(run),
                                RUN_STATE_WORDS.get(run.status, run.status.lower())))
    return HttpResponseRedirect(reverse("locks"))
