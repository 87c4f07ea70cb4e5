"""What the team pages show (web/catalog_pages/teams.py), as `user` may see it: every team with its member count,
how many of its entities the user may read and how those spread over each scorecard's levels; one team's members,
its entities of blueprints with scorecards with their stored standings (ScorecardResult), and how many of its
entities of each blueprint the user may read. Team names and members are not secret (GET /v1/teams answers every
signed-in user); entities, and every count of them, go through entities_visible_to. A constant number of queries,
whatever the number of teams, members or entities."""
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Count

from catalog.models import Entity, ScorecardResult, Team
from catalog.selectors.blueprints import blueprints_visible_to
from catalog.selectors.entities import entities_visible_to
from portal.errors import NotFound


@dataclass
class TeamSummary:
    name: str
    description: str
    members: int
    entities: int  # the team's entities the user may read
    levels: dict = field(default_factory=dict)  # {(blueprint id, scorecard identifier): {level title: entities}}


@dataclass
class TeamsOverview:
    teams: list  # [TeamSummary], by name
    scorecards: list  # [(Blueprint, scorecard)] of the blueprints the user may read, by blueprint title


def _with_scorecards(user):
    return [(bp, scorecard) for bp in blueprints_visible_to(user).exclude(scorecards=[])
            for scorecard in bp.scorecards]


def _level_counts(scorecard, counted):
    """{level title: entities} in the scorecard's order; stale levels (renamed since) are left out."""
    return {level["title"]: counted.get(level["title"], 0) for level in scorecard["levels"]}


def teams_overview_visible_to(user):
    readable = entities_visible_to(user)
    owned = Entity.teams.through.objects.filter(entity__in=readable).order_by()
    entity_counts = dict(owned.values_list("team_id").annotate(n=Count("id")).values_list("team_id", "n"))
    counted = defaultdict(dict)  # {(team id, blueprint id, scorecard): {level: entities}}
    for team_id, blueprint_id, scorecard, level, n in (
            ScorecardResult.objects.filter(entity__in=readable, entity__teams__isnull=False).order_by()
            .values_list("entity__teams", "blueprint_id", "scorecard", "level").annotate(n=Count("id"))
            .values_list("entity__teams", "blueprint_id", "scorecard", "level", "n")):
        counted[(team_id, blueprint_id, scorecard)][level] = n
    scorecards = _with_scorecards(user)
    teams = []
    rows = (Team.objects.annotate(members=Count("group__user", distinct=True)).order_by("name")
            .values_list("id", "name", "description", "members"))
    for team_id, name, description, members in rows:
        summary = TeamSummary(name=name, description=description, members=members,
                              entities=entity_counts.get(team_id, 0))
        for bp, scorecard in scorecards:
            key = (team_id, bp.pk, scorecard["identifier"])
            if key in counted:
                summary.levels[(bp.pk, scorecard["identifier"])] = _level_counts(scorecard, counted[key])
        teams.append(summary)
    return TeamsOverview(teams=teams, scorecards=scorecards)


@dataclass
class Member:
    email: str  # the username when the user has no email
    name: str  # "First Last", or ""


@dataclass
class TeamEntity:
    identifier: str
    title: str
    standings: dict  # {scorecard identifier: (level, {rule identifier: passed})}; absent: the filter leaves it out


@dataclass
class TeamBlueprint:
    blueprint: object  # the Blueprint
    count: int  # the team's entities of this blueprint the user may read
    entities: list = field(default_factory=list)  # [TeamEntity] by identifier, for blueprints with scorecards


@dataclass
class TeamPage:
    team: Team
    members: list  # [Member] by email (the username of a user without one)
    blueprints: list  # [TeamBlueprint] by blueprint title; only those with an entity the user may read


def team_get(name):
    """The team named `name`, or NotFound."""
    team = Team.objects.filter(name=name).first()
    if team is None:
        raise NotFound(f"Team {name!r} was not found.")
    return team


def team_page_visible_to(user, name):
    team = team_get(name)
    members = sorted((Member(email=email or username, name=f"{first} {last}".strip())
                      for email, username, first, last in get_user_model().objects.filter(groups=team.group_id)
                      .values_list("email", "username", "first_name", "last_name")), key=lambda m: m.email)
    owned = entities_visible_to(user, Entity.objects.filter(teams=team))
    counts = dict(owned.order_by().values_list("blueprint_id").annotate(n=Count("id"))
                  .values_list("blueprint_id", "n"))
    blueprints = [TeamBlueprint(blueprint=bp, count=counts[bp.pk])
                  for bp in blueprints_visible_to(user).filter(pk__in=list(counts))]
    by_id = {row.blueprint.pk: row for row in blueprints if row.blueprint.scorecards}
    if by_id:
        rated = owned.filter(blueprint_id__in=by_id)
        standings = defaultdict(dict)
        for entity_id, scorecard, level, passed in (ScorecardResult.objects.filter(entity__in=rated.values("id"))
                                                    .values_list("entity_id", "scorecard", "level", "passed")):
            standings[entity_id][scorecard] = (level, passed)
        for entity_id, blueprint_id, identifier, title in rated.order_by("identifier").values_list(
                "id", "blueprint_id", "identifier", "title"):
            by_id[blueprint_id].entities.append(TeamEntity(identifier=identifier, title=title,
                                                           standings=standings.get(entity_id, {})))
    return TeamPage(team=team, members=members, blueprints=blueprints)
