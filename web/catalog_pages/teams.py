"""`/teams/`: every team with its member count, how many of its entities the user may read, and per scorecard how
those spread over the levels. `/teams/<team>/`: a team's description and members and, per blueprint with
scorecards, its entities the user may read, lowest level first, each with its levels, how many rules it fails and
which rules of the next level up it fails (what to fix); the level counts per scorecard linking to the dashboard
at that level; how many entities of the other blueprints it owns, linking to the blueprint table filtered by the
team. Reads go through catalog/selectors/team_pages.py."""
from urllib.parse import quote, urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from catalog.selectors.initiatives import initiative_progress_visible_to, initiatives_visible_to
from catalog.selectors.team_pages import team_page_visible_to, teams_overview_visible_to
from portal.errors import NotFound
from web.catalog_pages.columns import blueprint_url, entity_url, team_url
from web.catalog_pages.filters import PREFIX as FILTER_PREFIX
from web.catalog_pages.initiatives import initiative_url
from web.catalog_pages.scorecards import dashboard_url

ENTITIES_SHOWN = 100  # per blueprint; the blueprint table filtered by the team lists them all


def _levels(scorecard, counts, url=None):
    """[{title, color, count, url}] of a scorecard's levels, lowest first; `url` the dashboard to filter by level."""
    return [{"title": level["title"], "color": level["color"], "count": counts.get(level["title"], 0),
             "url": f"{url}?{urlencode({'level': level['title']})}" if url else None} for level in scorecard["levels"]]


@login_required
def team_list(request):
    overview = teams_overview_visible_to(request.user)
    teams = [{"name": team.name, "description": team.description, "url": team_url(team.name),
              "members": team.members, "entities": team.entities,
              "scorecards": [{"title": scorecard["title"], "blueprint": bp,
                              "levels": _levels(scorecard, team.levels[(bp.pk, scorecard["identifier"])])}
                             for bp, scorecard in overview.scorecards
                             if (bp.pk, scorecard["identifier"]) in team.levels]}
             for team in overview.teams]
    return render(request, "catalog/team_list.html", {"teams": teams})


def _standing(scorecard, standing):
    """One entity's cell for one scorecard: its level and colour, how many rules it fails, and the failing rules of
    the next level up; None when the scorecard's filter leaves the entity out."""
    if standing is None:
        return None
    level, passed = standing
    titles = [lv["title"] for lv in scorecard["levels"]]
    rank = titles.index(level) if level in titles else 0
    next_level = titles[rank + 1] if rank + 1 < len(titles) else None
    failing = [rule for rule in scorecard["rules"] if not passed.get(rule["identifier"])]
    return {"level": level, "rank": rank, "color": scorecard["levels"][rank]["color"], "failing": len(failing),
            "next_level": next_level, "to_fix": [rule["title"] for rule in failing if rule["level"] == next_level]}


def _rated_blueprint(team, row):
    bp = row.blueprint
    entities = []
    for entity in row.entities:
        cells = [_standing(scorecard, entity.standings.get(scorecard["identifier"])) for scorecard in bp.scorecards]
        entities.append({"identifier": entity.identifier, "title": entity.title or entity.identifier,
                         "url": entity_url(bp.identifier, entity.identifier), "cells": cells,
                         # lowest first; an entity a scorecard's filter leaves out after every rated one
                         "order": tuple(len(s["levels"]) if c is None else c["rank"]
                                        for s, c in zip(bp.scorecards, cells))})
    entities.sort(key=lambda e: e["order"])  # stable: by identifier within a level
    summaries = []
    for i, scorecard in enumerate(bp.scorecards):
        counts = {}
        for entity in entities:
            if entity["cells"][i] is not None:
                counts[entity["cells"][i]["level"]] = counts.get(entity["cells"][i]["level"], 0) + 1
        summaries.append({"title": scorecard["title"], "rated": sum(counts.values()),
                          "url": dashboard_url(bp.identifier, scorecard["identifier"]),
                          "levels": _levels(scorecard, counts, dashboard_url(bp.identifier, scorecard["identifier"]))})
    return {"blueprint": bp, "count": row.count, "table_url": _table_url(bp, team), "scorecards": summaries,
            "entities": entities[:ENTITIES_SHOWN], "more": max(len(entities) - ENTITIES_SHOWN, 0)}


def _table_url(blueprint, team):
    return blueprint_url(blueprint.identifier) + "?" + urlencode({FILTER_PREFIX + "$team": team.name})


def _team_initiatives(user, team):
    """The initiatives covering entities of the team the user may read, with the team's progress on each."""
    rows = []
    for initiative in initiatives_visible_to(user):
        progress = initiative_progress_visible_to(user, initiative)
        tally = progress.teams.get(team.name)
        if tally is not None:
            rows.append({"initiative": initiative, "tally": tally, "due": initiative.due_date,
                         "url": f"{initiative_url(initiative.identifier)}?team={quote(team.name, safe='')}"})
    return rows


@login_required
def team_detail(request, team):
    try:
        page = team_page_visible_to(request.user, team)
    except NotFound as exc:
        raise Http404(exc.message)
    members = [{"email": m.email, "name": m.name} for m in page.members]
    return render(request, "catalog/team_detail.html", {
        "team": page.team, "members": members, "initiatives": _team_initiatives(request.user, page.team),
        "rated": [_rated_blueprint(page.team, row) for row in page.blueprints if row.blueprint.scorecards],
        "others": [{"blueprint": row.blueprint, "count": row.count, "url": _table_url(row.blueprint, page.team)}
                   for row in page.blueprints if not row.blueprint.scorecards],
    })
