"""Initiative reads: definitions in the API's JSON, and progress as `user` may see it — how many of the entities the
initiative covers meet it, overall and per owning team, and the entities that do not with the rules each must fix.
Progress is read from the stored scorecard standings (ScorecardResult), over the entities the user may read: a
constant number of queries whatever the catalog's size."""
from dataclasses import dataclass

from django.db.models import Count, Q
from django.utils import timezone

from catalog.initiatives import initiative_required_rules, initiative_scorecard
from catalog.models import Entity, Initiative, ScorecardResult
from catalog.scorecards import scorecard_rule_set
from catalog.selectors.entities import entities_visible_to
from catalog.selectors.search import rules_condition
from portal.datetimes import instant_text
from portal.errors import NotFound

COMPLETE, IN_PROGRESS, OVERDUE, NO_ENTITIES = "COMPLETE", "IN_PROGRESS", "OVERDUE", "NO_ENTITIES"
NO_TEAM = ""  # the per-team key of entities no team owns


def initiative_json(initiative):
    return {"identifier": initiative.identifier, "title": initiative.title, "description": initiative.description,
            "blueprint": initiative.blueprint.identifier, "scorecard": initiative.scorecard,
            "level": initiative.level or None, "rules": list(initiative.rules), "filter": initiative.filter,
            "dueDate": initiative.due_date.isoformat(), "createdAt": instant_text(initiative.created_at),
            "createdBy": initiative.created_by, "updatedAt": instant_text(initiative.updated_at),
            "updatedBy": initiative.updated_by}


def initiatives_all():
    return list(Initiative.objects.select_related("blueprint"))


def initiatives_visible_to(user):
    """The initiatives over blueprints whose entities the user may read (the pages' list), by due date."""
    from catalog.selectors.blueprints import blueprints_visible_to

    return list(Initiative.objects.filter(blueprint__in=blueprints_visible_to(user).values("pk"))
                .select_related("blueprint"))


def initiative_get(identifier):
    initiative = Initiative.objects.select_related("blueprint").filter(identifier=identifier).first()
    if initiative is None:
        raise NotFound(f"Initiative {identifier!r} was not found.")
    return initiative


@dataclass
class Tally:
    total: int
    done: int

    @property
    def percent(self):
        return None if not self.total else int(100 * self.done / self.total)

    def json(self):
        return {"total": self.total, "done": self.done, "percent": self.percent}


@dataclass
class InitiativeProgress:
    overall: Tally
    status: str  # COMPLETE, IN_PROGRESS, OVERDUE or NO_ENTITIES
    teams: dict  # {team name (NO_TEAM for none): Tally}, by name
    required: list  # the rule definitions an entity must pass, in the scorecard's order

    def json(self):
        return {**self.overall.json(), "status": self.status, "teams": [
            {"team": team or None, **tally.json()} for team, tally in self.teams.items()]}


def _covered_visible_to(user, initiative, scorecard):
    """The standings of the entities the initiative covers that the user may read."""
    entities = entities_visible_to(user, Entity.objects.filter(blueprint=initiative.blueprint))
    if initiative.filter:
        condition = rules_condition(scorecard_rule_set(initiative.filter), blueprint=initiative.blueprint)
        if condition is not None:
            entities = entities.annotate(covered=condition).filter(covered=True)
    return ScorecardResult.objects.filter(blueprint=initiative.blueprint, scorecard=scorecard["identifier"],
                                          entity__in=entities.values("pk"))


def _met(required):
    return Q(passed__contains={rule["identifier"]: True for rule in required})


def _status(initiative, overall):
    if not overall.total:
        return NO_ENTITIES
    if overall.done == overall.total:
        return COMPLETE
    return OVERDUE if timezone.localdate() > initiative.due_date else IN_PROGRESS


def initiative_progress_visible_to(user, initiative):
    """The initiative's progress over the entities the user may read (two queries)."""
    scorecard = initiative_scorecard(initiative)
    required = initiative_required_rules(initiative, scorecard) if scorecard else []
    if scorecard is None:
        return InitiativeProgress(overall=Tally(0, 0), status=NO_ENTITIES, teams={}, required=[])
    results, met = _covered_visible_to(user, initiative, scorecard), _met(required)
    overall = Tally(**results.aggregate(total=Count("id"), done=Count("id", filter=met)))
    teams = {}
    for team, total, done in (results.values_list("entity__teams__name").annotate(
            total=Count("id"), done=Count("id", filter=met)).values_list("entity__teams__name", "total", "done")):
        teams[team or NO_TEAM] = Tally(total, done)
    return InitiativeProgress(overall=overall, status=_status(initiative, overall),
                              teams=dict(sorted(teams.items(), key=lambda pair: (pair[0] == NO_TEAM, pair[0]))),
                              required=required)


def initiative_failing_visible_to(user, initiative, *, team=None, limit=100):
    """The entities the user may read that the initiative covers and that do not meet it, by identifier, at most
    `limit`: [{identifier, title, level, teams, fix: [rule definitions failing]}], and how many there are in all.
    `team` narrows to one owning team's (NO_TEAM: those no team owns)."""
    scorecard = initiative_scorecard(initiative)
    if scorecard is None:
        return [], 0
    required = initiative_required_rules(initiative, scorecard)
    results = _covered_visible_to(user, initiative, scorecard).exclude(_met(required))
    if team == NO_TEAM:
        results = results.filter(entity__teams__isnull=True)
    elif team is not None:
        results = results.filter(entity__teams__name=team)
    total = results.count()
    rows = list(results.order_by("entity__identifier").values_list(
        "entity_id", "entity__identifier", "entity__title", "level", "passed")[:limit])
    teams = {}
    for entity_id, name in (Entity.teams.through.objects.filter(entity_id__in=[row[0] for row in rows])
                            .order_by("team__name").values_list("entity_id", "team__name")):
        teams.setdefault(entity_id, []).append(name)
    failing = [{"identifier": identifier, "title": title or identifier, "level": level, "teams": teams.get(pk, []),
                "fix": [rule for rule in required if not passed.get(rule["identifier"])]}
               for pk, identifier, title, level, passed in rows]
    return failing, total
