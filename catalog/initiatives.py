"""Initiatives: a named goal over one scorecard of a blueprint, due by a date ("every production service at
Silver by 2027-03-31"). Ours; Port has no initiative API.

An initiative is `{identifier, title, description?, blueprint, scorecard, level?, rules?, filter?, dueDate}`:
    - it covers the entities the scorecard applies to, narrowed by `filter` (`{combinator, conditions}` in the
      search grammar, as a scorecard's filter);
    - an entity meets it when it passes every rule the goal requires: the scorecard's rules at `level` and every
      level below (what reaching `level` takes), and the rules named in `rules`. At least one of the two.
The shape is checked against catalog/schemas/initiative.json; what it means (the scorecard, level and rules
exist, the filter reads the blueprint's properties, the date is real) here.
"""
from datetime import date

from catalog.scorecards import scorecard_rule_set
from catalog.selectors.search import rules_validate
from catalog.shapes import schema_validator, shape_check
from portal.errors import Conflict, FieldError, ValidationFailed

EARLIEST_DUE, LATEST_DUE = date(2000, 1, 1), date(2999, 12, 31)


def initiative_definition_clean(data, *, blueprint_of):
    """The initiative `data`, checked; raises ValidationFailed naming the field at fault. `blueprint_of(identifier)`
    is the Blueprint its `blueprint` names (the caller's to lock), or None. Returns the model's fields."""
    shape_check(data, schema_validator("catalog", "initiative"))
    blueprint = blueprint_of(data["blueprint"])
    if blueprint is None:
        raise ValidationFailed(f"blueprint {data['blueprint']!r} does not exist", path="blueprint")
    scorecard = next((s for s in blueprint.scorecards if s["identifier"] == data["scorecard"]), None)
    if scorecard is None:
        raise ValidationFailed(f"blueprint {blueprint.identifier!r} has no scorecard {data['scorecard']!r} (it has "
                               f"{[s['identifier'] for s in blueprint.scorecards]})", path="scorecard")
    level = data.get("level") or ""
    titles = [lv["title"] for lv in scorecard["levels"]]
    if level and level not in titles:
        raise ValidationFailed(f"must be one of the scorecard's levels {titles}, got {level!r}", path="level")
    if level == titles[0]:
        raise ValidationFailed(f"{level!r} is the first level, where every entity starts; choose a higher one",
                               path="level")
    rules = data.get("rules") or []
    known = [rule["identifier"] for rule in scorecard["rules"]]
    for i, rule in enumerate(rules):
        if rule not in known:
            raise ValidationFailed(f"{rule!r} is not a rule of scorecard {scorecard['identifier']!r} ({known})",
                                   path=f"rules[{i}]")
    if not level and not rules:
        raise ValidationFailed("an initiative needs a level to reach or rules to pass", path="level")
    query = data.get("filter")
    if query is not None:
        try:
            rules_validate(scorecard_rule_set(query), blueprints=[blueprint], path="filter.conditions")
        except ValidationFailed as exc:
            raise ValidationFailed(errors=[FieldError(_conditions(e.path), _conditions(e.message))
                                           for e in exc.errors]) from None
    return {"identifier": data["identifier"], "title": data["title"], "description": data.get("description") or "",
            "blueprint": blueprint, "scorecard": scorecard["identifier"], "level": level, "rules": list(rules),
            "filter": query, "due_date": _due(data["dueDate"])}


def _conditions(text):
    return text.replace("filter.conditions.rules[", "filter.conditions[")


def _due(text):
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a date of the calendar", path="dueDate") from None
    if not EARLIEST_DUE <= day <= LATEST_DUE:
        raise ValidationFailed(f"must be between {EARLIEST_DUE} and {LATEST_DUE}, got {text!r}", path="dueDate")
    return day


def initiative_required_rules(initiative, scorecard):
    """The scorecard's rules (definitions, in its order) an entity must pass to meet the initiative."""
    titles = [level["title"] for level in scorecard["levels"]]
    reach = titles.index(initiative.level) if initiative.level in titles else 0
    named = set(initiative.rules)
    return [rule for rule in scorecard["rules"]
            if rule["identifier"] in named or (reach and titles.index(rule["level"]) <= reach)]


def initiative_scorecard(initiative):
    """The scorecard the initiative is over (None if its blueprint no longer has it: the services keep that from
    happening, but a reader should not crash on it)."""
    return next((s for s in initiative.blueprint.scorecards if s["identifier"] == initiative.scorecard), None)


def initiatives_still_hold(blueprint, scorecards):
    """Raise Conflict if `scorecards` (the blueprint's scorecards as they are about to be) would leave one of the
    blueprint's initiatives without its scorecard, level or rules: the initiative is changed or deleted first."""
    from catalog.models import Initiative

    by_identifier = {s["identifier"]: s for s in scorecards}
    for initiative in Initiative.objects.filter(blueprint=blueprint).order_by("identifier"):
        scorecard = by_identifier.get(initiative.scorecard)
        problem = None
        if scorecard is None:
            problem = f"it would remove scorecard {initiative.scorecard!r}"
        elif initiative.level and initiative.level not in [lv["title"] for lv in scorecard["levels"][1:]]:
            problem = f"scorecard {initiative.scorecard!r} would lose level {initiative.level!r}"
        else:
            missing = sorted(set(initiative.rules) - {rule["identifier"] for rule in scorecard["rules"]})
            if missing:
                problem = f"scorecard {initiative.scorecard!r} would lose rules {missing}"
        if problem:
            raise Conflict(f"Initiative {initiative.identifier!r} ({initiative.title}) is over this blueprint's "
                           f"scorecards, and {problem}: change or delete the initiative first.")
