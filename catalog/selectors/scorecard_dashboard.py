"""What the maturity dashboard of a scorecard shows (web/catalog_pages/scorecards.py), as `user` may see it: level
counts overall and per team and the rules failing most often over the entities the user may read; the day-by-day
history only to a user who reads every entity (beat's snapshots count them all); the entities at a level or
failing a rule. A constant number of queries, whatever the catalog's size."""
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from catalog.access import entity_read_rule
from catalog.models import Entity, ScorecardResult, ScorecardSnapshot
from catalog.selectors.entities import entities_visible_to

HISTORY_DAYS = 90


@dataclass
class ScorecardDashboard:
    levels: dict  # {level title: entities}, in the scorecard's order
    teams: dict  # {team name: {level title: entities}}, teams by name
    failing: list  # [(rule, entities failing it)], most failed first
    history: list | None = None  # [(day, {level: entities})], oldest first; None: not the user's to see
    total: int = 0
    unrated: int = 0  # entities of the blueprint the user reads that the scorecard's filter leaves out
    rules: list = field(default_factory=list)


def _results_visible_to(user, blueprint, scorecard):
    readable = entities_visible_to(user, Entity.objects.filter(blueprint=blueprint))
    return ScorecardResult.objects.filter(blueprint=blueprint, scorecard=scorecard["identifier"], entity__in=readable)


def scorecard_dashboard_visible_to(user, blueprint, scorecard):
    results = _results_visible_to(user, blueprint, scorecard)
    counted = dict(results.values_list("level").annotate(n=Count("id")).values_list("level", "n"))
    levels = {level["title"]: counted.get(level["title"], 0) for level in scorecard["levels"]}
    teams = {}
    for team, level, n in (results.filter(entity__teams__isnull=False)
                           .values_list("entity__teams__name", "level").annotate(n=Count("id"))
                           .values_list("entity__teams__name", "level", "n")):
        teams.setdefault(team, {title: 0 for title in levels})[level] = n
    failing = []
    if scorecard["rules"]:
        counts = results.aggregate(**{f"r{i}": Count("id", filter=Q(passed__contains={rule["identifier"]: False}))
                                      for i, rule in enumerate(scorecard["rules"])})
        failing = sorted(((rule, counts[f"r{i}"]) for i, rule in enumerate(scorecard["rules"]) if counts[f"r{i}"]),
                         key=lambda pair: -pair[1])
    total = sum(levels.values())
    readable = entities_visible_to(user, Entity.objects.filter(blueprint=blueprint)).count()
    dashboard = ScorecardDashboard(levels=levels, teams=dict(sorted(teams.items())), failing=failing, total=total,
                                   unrated=readable - total, rules=scorecard["rules"])
    if entity_read_rule(user).everything:
        since = timezone.localdate() - timedelta(days=HISTORY_DAYS)
        dashboard.history = list(ScorecardSnapshot.objects.filter(
            blueprint=blueprint, scorecard=scorecard["identifier"], team="", day__gte=since)
            .order_by("day").values_list("day", "counts"))
    return dashboard


def scorecard_entities_visible_to(user, blueprint, scorecard, *, level=None, failing_rule=None, limit=50):
    """The entities (identifier, title, level) the user may read at `level` or failing rule `failing_rule`, by
    identifier, at most `limit`."""
    results = _results_visible_to(user, blueprint, scorecard)
    if level is not None:
        results = results.filter(level=level)
    if failing_rule is not None:
        results = results.filter(passed__contains={failing_rule: False})
    return list(results.order_by("entity__identifier").values_list("entity__identifier", "entity__title", "level")[:limit])
