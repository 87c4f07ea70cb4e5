"""My environments (/environments/): every entity with a TTL timer that I own — the requester of the run that
created it, or its creator, the owners actions/services/ttl.py lets extend — with its time left, "Extend"
(ttl_extend) and "Terminate" (a run of the blueprint's DELETE action). Admins may list everyone's.

A TTL timer is a Timer row of a (blueprint, property) some CREATE action's `ttl` policy governs; when it expires
the sweeper fires the blueprint's TIMER_PROPERTY_EXPIRED automations as teardown runs and the entity leaves the
catalog once one succeeds (a failed teardown keeps it, marked). "Terminate" does it now, through the blueprint's
DELETE action (the starter `terminate_dev_env`), when there is one the user may run.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_duration
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from actions.access import can_execute
from actions.choices import RunOrigin
from actions.selectors.environments import (creating_runs_by_entity, delete_actions_by_blueprint,
                                            entity_team_ids_by_entity, ttl_timers_visible_to)
from actions.selectors.ttl import ttl_policies
from actions.services.runs import run_request
from actions.services.ttl import ttl_extend, ttl_extension, ttl_governing_action, ttl_may_extend
from catalog.access import is_admin, user_team_ids
from catalog.selectors.entities import entity_get_by_identifiers
from portal.actor import Actor, AuditOrigin
from portal.datetimes import instant_of, instant_text
from portal.errors import Forbidden, NotFound, PortalError
from web.catalog_pages.columns import entity_url
from web.catalog_pages.values import time_left_text
from web.pages import page_size

SOON = timedelta(hours=24)  # "expiring soon" badge


# --- readable durations (shared by the home and deployments pages) ---------------------------------------------

def duration_text(seconds) -> str:
    """'2d 3h', '4h 12m', '12m 5s', '40s'; '—' for no value."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {seconds % 60}s" if seconds % 60 else f"{minutes}m"
    return f"{seconds}s"


def iso_duration_text(value) -> str:
    """An ISO 8601 duration of a TTL policy ('P14D') in words ('14d')."""
    parsed = parse_duration(value) if isinstance(value, str) else None
    return duration_text(parsed.total_seconds()) if parsed is not None else str(value or "")


# --- who may run an action on many rows, in a constant number of queries --------------------------------------

class RunnableActions:
    """can_execute for many rows: its answer depends only on the action and on whether the row's owning teams
    meet the user's (ownedByTeam), so each (action, that bit) is asked once, whatever the number of rows."""

    def __init__(self, user):
        self.user = user
        self.team_ids = user_team_ids(user)
        self.answers = {}

    def prime(self, actions):
        """Ask up front for each action, both ways, so the number of queries depends on no row."""
        for action in actions:
            self.allows(action)
            if self.team_ids:
                self.allows(action, self.team_ids)

    def allows(self, action, entity_team_ids=()) -> bool:
        key = (action.pk, bool(self.team_ids & set(entity_team_ids)))
        if key not in self.answers:
            self.answers[key] = can_execute(self.user, action, entity_team_ids)
        return self.answers[key]


def needs_form(action) -> bool:
    """True when the action has a required input without a default: a button alone cannot run it."""
    inputs = (action.trigger.get("userInputs") or {})
    properties = inputs.get("properties") or {}
    return any("default" not in (properties.get(key) or {}) for key in inputs.get("required") or [])


def action_form_url(action, entity_identifier):
    return f"/actions/{action.identifier}/run?{urlencode({'entity': entity_identifier})}"


def run_link(run):
    return format_html('<a href="/runs/{}/">run {}</a>', run.id, run.id)


# --- the rows of the page ------------------------------------------------------------------------------------

@dataclass
class EnvironmentRow:
    entity: object
    timer: object
    policy_action: object  # the CREATE action whose TTL policy governs the timer, if any
    owner: str = ""
    url: str = ""
    state: str = "active"  # active | soon | expired | tearing_down | teardown_failed
    state_text: str = ""
    time_left: str = ""
    maximum_text: str = ""
    extend_by_text: str = ""
    maximum_at: datetime | None = None
    at_maximum: bool = False
    capped: bool = False  # the next extension stops at the maximum
    may_extend: bool = False
    terminate_action: object = None
    terminate_form_url: str = ""
    terminate_note: str = ""
    error: str = ""

    @property
    def entity_url(self):
        return entity_url(self.entity.blueprint.identifier, self.entity.identifier)

    @property
    def expires_iso(self):
        return instant_text(self.timer.expires_at)


def safe_url(value) -> str:
    """A value to put in an href: only http(s) URLs (a stored `javascript:` value must not become a link)."""
    return value if isinstance(value, str) and value.lower().startswith(("http://", "https://")) else ""


def _first_url(entity):
    for key, definition in (entity.blueprint.schema.get("properties") or {}).items():
        if isinstance(definition, dict) and definition.get("format") == "url" and safe_url(entity.properties.get(key)):
            return entity.properties[key]
    return ""


def _state(timer, now):
    if timer.termination_failed_at is not None:
        return "teardown_failed", "Teardown failed"
    if timer.fired_at is not None:
        return "tearing_down", "Expired: teardown under way"
    if timer.expires_at <= now:
        return "expired", "Expired"
    if timer.expires_at - now <= SOON:
        return "soon", "Expiring soon"
    return "active", "Active"


def _limits(row, policy, now):
    """The maximum, and what the Extend button does: ttl_extension, as ttl_extend will do it."""
    row.extend_by_text = iso_duration_text(policy.get("extendBy") or policy.get("default"))
    if not policy.get("maximum") or parse_duration(policy["maximum"]) is None:
        return
    row.maximum_text = iso_duration_text(policy["maximum"])
    row.maximum_at = row.entity.created_at + parse_duration(policy["maximum"])
    extension = ttl_extension(entity=row.entity, timer=row.timer, policy=policy, now=now)
    row.at_maximum, row.capped = extension.at_maximum, extension.capped


def environment_rows(user, *, everyone=False, limit=None):
    """The rows of the page (and of the home page's section), in a constant number of queries."""
    policies = ttl_policies()
    timers = list(ttl_timers_visible_to(user, everyone=everyone, policies=policies, limit=limit))
    if not timers:
        return []
    entity_ids = [t.entity_id for t in timers]
    creating = creating_runs_by_entity(entity_ids)
    teams = entity_team_ids_by_entity(entity_ids)
    deletes = delete_actions_by_blueprint({t.entity.blueprint.identifier for t in timers})
    runnable = RunnableActions(user)
    runnable.prime([a for group in deletes.values() for a in group] + list({a.pk: a for a in policies.values()}.values()))
    now = timezone.now()
    rows = []
    for timer in timers:
        entity, run = timer.entity, creating.get(timer.entity_id)
        policy_action = ttl_governing_action(blueprint_identifier=entity.blueprint.identifier, creating_run=run,
                                             property=timer.property, policies=policies)
        row = EnvironmentRow(entity=entity, timer=timer, policy_action=policy_action, url=_first_url(entity),
                             owner=run.requested_by.email if run is not None and run.requested_by else entity.created_by)
        row.state, row.state_text = _state(timer, now)
        row.time_left = time_left_text(timer.expires_at, now)
        _limits(row, (policy_action.ttl if policy_action else None) or {}, now)
        entity_teams = teams.get(entity.pk, set())
        row.may_extend = policy_action is not None and row.state != "tearing_down" and ttl_may_extend(
            user, entity=entity, creating_run=run, may_run_action=lambda: runnable.allows(policy_action, entity_teams))
        if row.state != "tearing_down":
            _offer_terminate(row, deletes.get(entity.blueprint.identifier, []), runnable, entity_teams)
        rows.append(row)
    return rows


def _offer_terminate(row, actions, runnable, entity_teams):
    allowed = [a for a in actions if runnable.allows(a, entity_teams)]
    if allowed:
        action = allowed[0]
        if needs_form(action):
            row.terminate_form_url = action_form_url(action, row.entity.identifier)
        row.terminate_action = action
    elif actions:
        row.terminate_note = (f"You may not run {actions[0].title!r}; it will be torn down when its time is up, "
                              "or ask its owner or a platform admin.")
    else:
        row.terminate_note = ("No terminate action exists for this kind of environment: "
                              "it is torn down automatically when its time is up.")


# --- views ----------------------------------------------------------------------------------------------------

def _everyone(request):
    return is_admin(request.user) and request.GET.get("all", request.POST.get("all")) == "1"


def _back(request):
    return HttpResponseRedirect(reverse("environments") + ("?all=1" if _everyone(request) else ""))


def _render(request, *, status=200, errors=None, top_error=""):
    everyone = _everyone(request)
    rows = environment_rows(request.user, everyone=everyone, limit=page_size(request, default=100, maximum=500))
    errors = dict(errors or {})
    for row in rows:
        row.error = errors.pop(row.entity.pk, "")
    top_error = " ".join([top_error, *errors.values()]).strip()  # a refusal about a row not listed goes on top
    return render(request, "actions/environments.html", {
        "rows": rows, "everyone": everyone, "is_admin": is_admin(request.user), "top_error": top_error,
    }, status=status)


@login_required
def environments_page(request):
    return _render(request)


def _posted_entity(request):
    """The entity a form names (blueprint + identifier), if the user may read it; NotFound otherwise."""
    blueprint, identifier = request.POST.get("blueprint", ""), request.POST.get("entity", "")
    if not blueprint or not identifier:
        raise NotFound("no environment named", path="entity")
    return entity_get_by_identifiers(blueprint, identifier, user=request.user)


def _refused(request, exc, entity=None):
    """Re-render the list with the service's message at the row (or at the top), with its status."""
    errors = {entity.pk: exc.message} if entity is not None else None
    return _render(request, status=exc.status, errors=errors, top_error="" if errors else exc.message)


@login_required
@require_POST
def environment_extend(request):
    entity = None
    try:
        entity = _posted_entity(request)
        result = ttl_extend(actor=Actor(user=request.user, origin=AuditOrigin.UI), entity=entity)
    except PortalError as exc:
        return _refused(request, exc, entity)
    expires = instant_of(result["expiresAt"])
    messages.success(request, f"{entity.title or entity.identifier}: extended by {iso_duration_text(result['extendBy'])}, "
                              f"now expires {expires:%Y-%m-%d %H:%M} UTC ({time_left_text(expires)}).")
    return _back(request)


@login_required
@require_POST
def environment_terminate(request):
    entity = None
    try:
        entity = _posted_entity(request)
        actions = delete_actions_by_blueprint([entity.blueprint.identifier]).get(entity.blueprint.identifier, [])
        runnable = RunnableActions(request.user)
        teams = entity_team_ids_by_entity([entity.pk]).get(entity.pk, set())
        allowed = [a for a in actions if runnable.allows(a, teams)]
        if not allowed:
            row = EnvironmentRow(entity=entity, timer=None, policy_action=None)
            _offer_terminate(row, actions, runnable, teams)
            raise Forbidden(row.terminate_note)
        action = allowed[0]
        if needs_form(action):
            return HttpResponseRedirect(action_form_url(action, entity.identifier))
        run = run_request(actor=Actor(user=request.user, origin=AuditOrigin.UI), action=action, properties={},
                          entity_identifier=entity.identifier, origin=RunOrigin.UI)
    except PortalError as exc:
        return _refused(request, exc, entity)
    messages.success(request, format_html("{}: {} requested — follow {}.", entity.title or entity.identifier,
                                          action.title, run_link(run)))
    return _back(request)
