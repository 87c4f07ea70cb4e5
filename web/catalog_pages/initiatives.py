"""`/initiatives/`: the goals set over scorecards, each with its due date and progress. `/initiatives/<identifier>/`:
one initiative — what it asks, its progress overall and per team, and the entities that do not meet it yet with
the rules each must fix (`?team=` narrows to one team's; `?team=` empty to those no team owns). Counted over the
entities the user may read."""
from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone

from catalog.initiatives import initiative_scorecard
from catalog.selectors.blueprints import blueprint_visible_to
from catalog.selectors.initiatives import (NO_TEAM, initiative_failing_visible_to, initiative_get,
                                           initiative_progress_visible_to, initiatives_visible_to)
from portal.errors import NotFound
from web.catalog_pages.columns import blueprint_url, entity_url
from web.catalog_pages.scorecards import dashboard_url
from web.pages import page_size

STATUS_TEXT = {"COMPLETE": "Complete", "IN_PROGRESS": "In progress", "OVERDUE": "Overdue",
               "NO_ENTITIES": "Covers nothing you may see"}


def initiative_url(identifier):
    return f"/initiatives/{quote(identifier, safe='')}/"


def _due_text(due):
    days = (due - timezone.localdate()).days
    if days > 1:
        return f"due in {days} days"
    return {1: "due tomorrow", 0: "due today", -1: "due yesterday"}.get(days, f"{-days} days past due")


def _card(user, initiative):
    progress = initiative_progress_visible_to(user, initiative)
    return {"initiative": initiative, "url": initiative_url(initiative.identifier), "progress": progress,
            "status": STATUS_TEXT[progress.status], "due": _due_text(initiative.due_date)}


@login_required
def initiative_list(request):
    cards = [_card(request.user, initiative) for initiative in initiatives_visible_to(request.user)]
    return render(request, "catalog/initiative_list.html", {"cards": cards})


def _condition_text(condition):
    if "rules" in condition:
        return "(" + f" {condition.get('combinator', 'and')} ".join(_condition_text(c) for c in condition["rules"]) + ")"
    value = condition.get("value")
    return " ".join(str(part) for part in (condition.get("property") or condition.get("relation"),
                                           condition.get("operator"), "" if value is None else value) if part != "")


@login_required
def initiative_detail(request, identifier):
    try:
        initiative = initiative_get(identifier)
    except NotFound as exc:
        raise Http404(exc.message)
    blueprint = blueprint_visible_to(request.user, initiative.blueprint.identifier)
    if blueprint is None:
        raise Http404(f"Initiative {identifier!r} was not found.")
    team = request.GET.get("team")
    failing, failing_total = initiative_failing_visible_to(request.user, initiative, team=team,
                                                           limit=page_size(request, default=100, maximum=1000))
    card = _card(request.user, initiative)
    scorecard = initiative_scorecard(initiative) or {"title": initiative.scorecard, "identifier": initiative.scorecard}
    for item in failing:
        item["url"] = entity_url(blueprint.identifier, item["identifier"])
    teams = [{"name": name, "label": name or "No team", "tally": tally,
              "url": f"{initiative_url(identifier)}?team={quote(name, safe='')}"}
             for name, tally in card["progress"].teams.items()]
    return render(request, "catalog/initiative_detail.html", {
        **card, "blueprint": blueprint, "blueprint_url": blueprint_url(blueprint.identifier), "scorecard": scorecard,
        "dashboard_url": dashboard_url(blueprint.identifier, scorecard["identifier"]),
        "covers": " and ".join(_condition_text(c) for c in (initiative.filter or {}).get("conditions", [])),
        "teams": teams, "failing": failing, "failing_total": failing_total, "team": team,
        "team_label": None if team is None else (team or "No team"), "no_team": NO_TEAM,
    })
