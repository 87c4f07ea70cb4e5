"""Scorecards (Port's shape): a blueprint's levels and rules, checked here; an entity's level from the rules it passes.

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
import re

from catalog.identifiers import check_key
from catalog.selectors.search import rules_validate
from portal.errors import FieldError, ValidationFailed

DEFAULT_LEVELS = (
    {"title": "Basic", "color": "paleBlue"},
    {"title": "Bronze", "color": "bronze"},
    {"title": "Silver", "color": "silver"},
    {"title": "Gold", "color": "gold"},
)
SCORECARD_KEYS = {"identifier", "title", "description", "filter", "levels", "rules", "blueprint"}
LEVEL_KEYS = {"title", "color"}
RULE_KEYS = {"identifier", "title", "description", "level", "query"}
QUERY_KEYS = {"combinator", "conditions"}
COLOUR = re.compile(r"[A-Za-z]{1,30}")
MAX_LEVELS, MAX_RULES = 20, 200


def _fail(path, message):
    raise ValidationFailed(message, path=path)


def _dict(value, path):
    if not isinstance(value, dict):
        _fail(path, f"must be an object, got {type(value).__name__ if value is not None else 'null'}")
    return value


def _known(data, allowed, path, what):
    unknown = sorted(set(data) - allowed)
    if unknown:
        _fail(f"{path}.{unknown[0]}" if path else unknown[0], f"is not a field of {what} ({', '.join(sorted(allowed))})")


def _text(data, key, path, *, required):
    value = data.get(key)
    if value in (None, "") and not required:  # a scorecard as the API returns it has "" for no description
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 200 or "\x00" in value:
        _fail(f"{path}.{key}" if path else key, "must be a non-empty string of at most 200 characters without NUL")
    return value


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


def _query(value, path, blueprint):
    query = _dict(value, path)
    _known(query, QUERY_KEYS, path, "a query")
    if query.get("combinator") not in ("and", "or"):
        _fail(f"{path}.combinator", f'must be "and" or "or", got {query.get("combinator")!r}')
    if not isinstance(query.get("conditions"), list):
        _fail(f"{path}.conditions", "must be a list of rules")
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
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_LEVELS:
        _fail("levels", f"must be a list of 1 to {MAX_LEVELS} levels {{title, color}}")
    seen = set()
    for i, level in enumerate(value):
        path = f"levels[{i}]"
        _known(_dict(level, path), LEVEL_KEYS, path, "a level")
        title = _text(level, "title", path, required=True)
        if title in seen:
            _fail(f"{path}.title", f"{title!r} is already a level of this scorecard")
        seen.add(title)
        if not isinstance(level.get("color"), str) or not COLOUR.fullmatch(level["color"]):
            _fail(f"{path}.color", "must be a colour name (letters only), e.g. \"gold\"")
    return [{"title": level["title"], "color": level["color"]} for level in value]


def scorecard_definition_clean(data, *, blueprint):
    """The scorecard `data` for `blueprint` (a Blueprint), checked and with defaults; raises ValidationFailed naming
    the path at fault (`rules[1].query.conditions[0].property`)."""
    data = _dict(data, "body")
    _known(data, SCORECARD_KEYS, "", "a scorecard")
    check_key(data.get("identifier"), "identifier")
    if data.get("blueprint", blueprint.identifier) != blueprint.identifier:  # as GET returns it: taken back as is
        _fail("blueprint", f"must be {blueprint.identifier!r}, the blueprint in the path, or absent")
    title = _text(data, "title", "", required=False) or data["identifier"]
    description = _text(data, "description", "", required=False) or ""
    levels = _levels(data.get("levels"))
    titles = [level["title"] for level in levels]
    rules = data.get("rules")
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        _fail("rules", f"must be a list of at most {MAX_RULES} rules")
    clean_rules, seen = [], set()
    for i, rule in enumerate(rules):
        path = f"rules[{i}]"
        _known(_dict(rule, path), RULE_KEYS, path, "a rule")
        check_key(rule.get("identifier"), f"{path}.identifier")
        if rule["identifier"] in seen:
            _fail(f"{path}.identifier", f"{rule['identifier']!r} is already a rule of this scorecard")
        seen.add(rule["identifier"])
        level = rule.get("level")
        if level not in titles:
            _fail(f"{path}.level", f"must be one of the scorecard's levels {titles}, got {level!r}")
        if level == titles[0]:
            _fail(f"{path}.level", f"{level!r} is the first level, which every entity starts at; a rule needs a higher one")
        clean_rules.append({"identifier": rule["identifier"], "title": _text(rule, "title", path, required=False)
                            or rule["identifier"], "description": _text(rule, "description", path, required=False)
                            or "", "level": level, "query": _query(rule.get("query"), f"{path}.query", blueprint)})
    clean = {"identifier": data["identifier"], "title": title, "description": description, "levels": levels,
             "rules": clean_rules, "filter": None}
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

