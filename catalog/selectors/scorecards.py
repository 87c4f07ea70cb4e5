"""Scorecard reads: definitions in Port's JSON and the standings stored for entities (entity JSON's `scorecards`).
Which rules entities pass is catalog/selectors/scorecard_rules.py."""
from collections import defaultdict

from catalog.models import ScorecardResult
from portal.errors import NotFound

def scorecard_json(blueprint, scorecard):
    return {"identifier": scorecard["identifier"], "title": scorecard["title"], "description": scorecard["description"],
            "blueprint": blueprint.identifier, "filter": scorecard["filter"], "levels": scorecard["levels"],
            "rules": scorecard["rules"]}


def scorecard_find(blueprint, identifier):
    """The scorecard `identifier` of `blueprint`, or NotFound."""
    for scorecard in blueprint.scorecards:
        if scorecard["identifier"] == identifier:
            return scorecard
    raise NotFound(f"Scorecard {identifier!r} of blueprint {blueprint.identifier!r} was not found.")


def scorecard_standings(entities):
    """{entity pk: {scorecard identifier: {level, rules: [{identifier, status, level}]}}} from the stored results of
    `entities` (with their blueprints loaded), one query; rules in the scorecard's order."""
    with_scorecards = [e for e in entities if e.blueprint.scorecards]
    if not with_scorecards:
        return {}
    stored = defaultdict(dict)
    for entity_id, scorecard, level, passed in (ScorecardResult.objects.filter(entity__in=with_scorecards)
                                                .values_list("entity_id", "scorecard", "level", "passed")):
        stored[entity_id][scorecard] = (level, passed)
    return {entity.pk: scorecard_standings_of(entity.blueprint, stored[entity.pk]) for entity in with_scorecards}


def scorecard_standings_of(blueprint, stored):
    """One entity's standings on `blueprint`'s scorecards, in their order, from its stored results
    (`{scorecard identifier: (level, passed)}`); a scorecard without a stored result is left out."""
    return {scorecard["identifier"]: scorecard_standing(scorecard, *stored[scorecard["identifier"]])
            for scorecard in blueprint.scorecards if scorecard["identifier"] in stored}


def scorecard_standing(scorecard, level, passed):
    """An entity's standing on `scorecard` as entity JSON shows it: `{level, rules: [{identifier, status, level}]}`."""
    return {"level": level, "rules": [
        {"identifier": rule["identifier"], "status": "SUCCESS" if passed.get(rule["identifier"]) else "FAILURE",
         "level": rule["level"]} for rule in scorecard["rules"]]}
