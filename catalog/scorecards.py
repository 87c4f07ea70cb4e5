"""Scorecards (Port's shape): a blueprint's levels and rules, checked here (their shape against
catalog/schemas/scorecard.json, what they mean in Python); an entity's level from the rules it passes.

A scorecard is `{identifier, title, description?, filter?, levels?, rules}`:
    - `levels`: `[{title, color}]`, lowest first; Port's Basic/Bronze/Silver/Gold when absent. The first level is
      where every entity the scorecard applies to starts, so no rule may name it.
    - `rules`: `[{identifier, title, description?, level, query: {combinator, conditions: [...]}}]`; `conditions`
      are rules in the search grammar (catalog/selectors/search.py) over the blueprint's properties, relations,
      mirror properties and meta-properties.
    - `filter`: `{combinator, conditions}` choosing the entities the scorecard applies to (all when absent).
An entity reaches a level when it passes every rule of that level and of every level below it; a level without
rules is passed by reaching the one below it.
"""
from catalog.selectors.search import rules_validate
from catalog.shapes import schema_validator, shape_check
from portal.errors import FieldError, ValidationFailed

DEFAULT_LEVELS = (
    {"title": "Basic", "color": "paleBlue"},
    {"title": "Bronze", "color": "bronze"},
    {"title": "Silver", "color": "silver"},
    {"title": "Gold", "color": "gold"},
)
MAX_LEVELS, MAX_RULES = 20, 200  # as catalog/schemas/scorecard.json says (levels maxItems, rules maxItems)
SHAPE = schema_validator("catalog", "scorecard")


def _fail(path, message):
    raise ValidationFailed(message, path=path)


def scorecard_rule_set(query):
    """A scorecard query `{combinator, conditions}` as a search rule set `{combinator, rules}`."""
    return {"combinator": query["combinator"], "rules": query["conditions"]}


def _conditions_path(text):
    return text.replace(".conditions.rules[", ".conditions[")


def _no_levels_read(conditions, path):
    """A scorecard's rules and filter may not read scorecard levels (`$scorecard.<id>`): levels are computed from
    them, all at once."""
    stack = [(conditions, path)]
    while stack:
        rules, at = stack.pop()
        for i, rule in enumerate(rules if isinstance(rules, list) else ()):
            if isinstance(rule, dict) and isinstance(rule.get("rules"), list):
                stack.append((rule["rules"], f"{at}[{i}].rules"))
            elif isinstance(rule, dict) and str(rule.get("property", "")).startswith("$scorecard."):
                _fail(f"{at}[{i}].property", "a scorecard's rules cannot read scorecard levels")


def _query(query, path, blueprint):
    """A query of the scorecard's shape, its conditions checked in the search grammar over `blueprint`."""
    _no_levels_read(query["conditions"], f"{path}.conditions")
    try:
        rules_validate(scorecard_rule_set(query), blueprints=[blueprint], path=f"{path}.conditions")
    except ValidationFailed as exc:
        # the search grammar names `<path>.conditions.rules[i]`; a scorecard's conditions are that list itself
        raise ValidationFailed(errors=[FieldError(_conditions_path(e.path), _conditions_path(e.message))
                                       for e in exc.errors]) from None
    return {"combinator": query["combinator"], "conditions": query["conditions"]}


def _levels(value):
    if value is None:
        return [dict(level) for level in DEFAULT_LEVELS]
    seen = set()
    for i, level in enumerate(value):
        if level["title"] in seen:
            _fail(f"levels[{i}].title", f"{level['title']!r} is already a level of this scorecard")
        seen.add(level["title"])
    return [{"title": level["title"], "color": level["color"]} for level in value]


def scorecard_definition_clean(data, *, blueprint):
    """The scorecard `data` for `blueprint` (a Blueprint), checked and with defaults; raises ValidationFailed naming
    the path at fault (`rules[1].query.conditions[0].property`). Its shape is catalog/schemas/scorecard.json's;
    what it means (levels and rules that refer to each other, conditions over the blueprint) is checked here."""
    shape_check(data, SHAPE)
    if data.get("blueprint", blueprint.identifier) != blueprint.identifier:  # as GET returns it: taken back as is
        _fail("blueprint", f"must be {blueprint.identifier!r}, the blueprint in the path, or absent")
    levels = _levels(data.get("levels"))
    titles = [level["title"] for level in levels]
    clean_rules, seen = [], set()
    for i, rule in enumerate(data["rules"]):
        path = f"rules[{i}]"
        if rule["identifier"] in seen:
            _fail(f"{path}.identifier", f"{rule['identifier']!r} is already a rule of this scorecard")
        seen.add(rule["identifier"])
        level = rule["level"]
        if level not in titles:
            _fail(f"{path}.level", f"must be one of the scorecard's levels {titles}, got {level!r}")
        if level == titles[0]:
            _fail(f"{path}.level", f"{level!r} is the first level, which every entity starts at; a rule needs a higher one")
        clean_rules.append({"identifier": rule["identifier"], "title": rule.get("title") or rule["identifier"],
                            "description": rule.get("description") or "", "level": level,
                            "query": _query(rule["query"], f"{path}.query", blueprint)})
    clean = {"identifier": data["identifier"], "title": data.get("title") or data["identifier"],
             "description": data.get("description") or "", "levels": levels, "rules": clean_rules, "filter": None}
    if data.get("filter") is not None:
        clean["filter"] = _query(data["filter"], "filter", blueprint)
    return clean


def scorecard_level(scorecard, passed):
    """The level an entity reaches given the identifiers of the rules it `passed`: the highest level such that it
    passes every rule at that level and below."""
    failing_levels = {rule["level"] for rule in scorecard["rules"] if rule["identifier"] not in passed}
    reached = scorecard["levels"][0]["title"]
    for level in scorecard["levels"][1:]:
        if level["title"] in failing_levels:
            break
        reached = level["title"]
    return reached

