"""Validation of blueprint definitions (what a platform engineer writes), field by field, all the way down.

`blueprint_definition_clean(data, blueprints=...)` returns the normalised definition or raises
ValidationFailed whose message starts with the JSON path at fault (`schema.properties.replicas.type`).
Property definitions are checked by catalog.property_definitions; relations, mirror, calculation and
aggregation properties and ownership here, against the other blueprints' definitions.
"""
import math

from catalog import choices
from catalog.identifiers import check_blueprint_identifier, check_key
from catalog.models import Blueprint
from catalog.property_definitions import (  # noqa: F401 (check_enum: actions.definitions imports it from here)
    check_enum, check_required, check_strings, json_type_name, properties_schema_check, property_definition_check,
    property_values_check,
)
from portal.errors import ValidationFailed
from portal.jq import JqError, jq_compile_check

RELATION_KEYS = {"target", "required", "many", "title", "description"}
MIRROR_KEYS = {"path", "title", "description", "icon"}
CALCULATION_KEYS = {"calculation", "type", "format", "title", "description", "icon", "colorized", "colors", "items",
                    "spec", "specAuthentication"}
AGGREGATION_KEYS = {"title", "description", "icon", "type", "target", "calculationSpec", "query", "pathFilter"}
CALCULATION_SPEC_KEYS = {"func", "calculationBy", "property", "averageOf", "measureTimeBy"}
CALCULATION_BY = ("entities", "property")
ENTITIES_FUNCTIONS = ("count", "average")  # by entities; by property: every function but count
AVERAGE_OF = ("hour", "day", "week", "month", "total")  # "total" averages by property only
TIME_META_PROPERTIES = ("$createdAt", "$updatedAt")
OWNERSHIP_KEYS = {"type", "path", "title"}


def _fail(path, message):
    raise ValidationFailed(message, path=path)


def _require_dict(value, path):
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(path, f"must be an object, got {json_type_name(value)}")
    return value


def _unknown(data, allowed, path):
    unknown = set(data) - allowed
    if unknown:
        _fail(path, f"unknown keys {sorted(unknown)}")


def _check_stored_json(data):
    """Refuse what PostgreSQL's jsonb cannot store (the admin's JSON fields parse NaN and Infinity; any
    string may carry a NUL), naming where it is. Iterative: a deep document cannot exhaust the stack."""
    stack = [(data, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            _fail(path or "body", f"{value} is not a JSON number")
        if isinstance(value, str) and "\x00" in value:
            _fail(path or "body", "contains a NUL character")
        if isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    _fail(path or "body", f"key {key!r} contains a NUL character")
                stack.append((item, f"{path}.{key}" if path else key))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(value))


def _check_schema(schema):
    schema = _require_dict(schema, "schema")
    _unknown(schema, {"properties", "required", "type", "additionalProperties"}, "schema")
    if schema.get("type", "object") != "object":
        _fail("schema.type", "must be \"object\"")
    if not isinstance(schema.get("additionalProperties", False), bool):
        _fail("schema.additionalProperties", "must be true or false")
    properties = _require_dict(schema.get("properties"), "schema.properties")
    for key, prop in properties.items():
        check_key(key, f"schema.properties.{key}")
        property_definition_check(prop, f"schema.properties.{key}")
    clean = {"properties": properties, "required": check_required(schema.get("required", []), properties, "schema.required")}
    properties_schema_check(clean)
    for key, prop in properties.items():
        property_values_check(prop, f"schema.properties.{key}")
    return clean


def _check_relations(relations, identifier, blueprints):
    relations = _require_dict(relations, "relations")
    clean = {}
    for key, rel in relations.items():
        path = f"relations.{key}"
        check_key(key, path)
        rel = _require_dict(rel, path)
        _unknown(rel, RELATION_KEYS, path)
        target = rel.get("target")
        if not isinstance(target, str):
            _fail(f"{path}.target", f"must be a blueprint identifier, got {json_type_name(target)}")
        if target != identifier and target not in blueprints:
            _fail(f"{path}.target", f"blueprint {target!r} does not exist")
        for flag in ("required", "many"):
            if not isinstance(rel.get(flag, False), bool):
                _fail(f"{path}.{flag}", "must be true or false")
        check_strings(rel, ("title", "description"), path)
        clean[key] = {
            "target": target,
            "required": rel.get("required", False),
            "many": rel.get("many", False),
            **{k: rel[k] for k in ("title", "description") if k in rel},
        }
    return clean


def _follow(start, steps, definitions, path):
    """The definition reached from blueprint definition `start` along the relation ids `steps`, hop by hop;
    fails at `path` naming the step that is not a relation."""
    current = start
    for step in steps:
        relation = current["relations"].get(step) if isinstance(step, str) else None
        target = definitions.get(relation["target"]) if relation is not None else None
        if target is None:
            _fail(path, f"{step!r} is not a relation of blueprint {current['identifier']!r}")
        current = target
    return current


def _check_mirrors(mirrors, own, definitions):
    mirrors = _require_dict(mirrors, "mirrorProperties")
    for key, mirror in mirrors.items():
        path = f"mirrorProperties.{key}"
        check_key(key, path)
        mirror = _require_dict(mirror, path)
        _unknown(mirror, MIRROR_KEYS, path)
        check_strings(mirror, ("title", "description", "icon"), path)
        chain = mirror.get("path")
        if not isinstance(chain, str) or not chain:
            _fail(f"{path}.path", "is required: relation ids joined by dots, ending in a property or meta-property")
        steps = chain.split(".")
        if len(steps) < 2:
            _fail(f"{path}.path", f"{chain!r} must start with a relation and end with a property")
        current = _follow(own, steps[:-1], definitions, f"{path}.path")
        last = steps[-1]
        if last not in choices.META_PROPERTIES and last not in current["schema"].get("properties", {}):
            _fail(f"{path}.path", f"{last!r} is neither a property of {current['identifier']!r} nor a meta-property")
    return mirrors


def _check_calculations(calculations):
    calculations = _require_dict(calculations, "calculationProperties")
    for key, calc in calculations.items():
        path = f"calculationProperties.{key}"
        check_key(key, path)
        calc = _require_dict(calc, path)
        _unknown(calc, CALCULATION_KEYS, path)
        expression = calc.get("calculation")
        if not isinstance(expression, str) or not expression.strip():
            _fail(f"{path}.calculation", "is required: a jq expression over the entity")
        try:
            jq_compile_check(expression)
        except JqError as exc:
            _fail(f"{path}.calculation", f"does not compile: {exc}")
        calc.setdefault("type", "string")
        # Its result is shown as a property of this type and format would be.
        property_definition_check({k: v for k, v in calc.items() if k not in ("calculation", "colorized", "colors")}, path)
        if not isinstance(calc.get("colorized", False), bool):
            _fail(f"{path}.colorized", "must be true or false")
        colors = _require_dict(calc.get("colors"), f"{path}.colors")
        for value, color in colors.items():
            if not isinstance(color, str) or not color:
                _fail(f"{path}.colors.{value}", "must be a colour name")
    return calculations


def _reaches(start, goal, definitions):
    """Whether blueprint `goal` is reached from blueprint `start` following relations forwards (any depth)."""
    seen, stack = {start}, [start]
    while stack:
        for relation in definitions[stack.pop()]["relations"].values():
            target = relation["target"]
            if target == goal:
                return True
            if target in definitions and target not in seen:
                seen.add(target)
                stack.append(target)
    return False


def _as_blueprint(definition):
    """An unsaved Blueprint carrying `definition`, for the search rule validator."""
    from catalog.models import Blueprint

    return Blueprint(identifier=definition["identifier"], schema=definition["schema"], relations=definition["relations"],
                     mirror_properties=definition.get("mirrorProperties") or {},
                     calculation_properties=definition.get("calculationProperties") or {},
                     aggregation_properties=definition.get("aggregationProperties") or {})


def _check_aggregations(aggregations, own, definitions):
    """Port's aggregation properties (computed elsewhere): a number over the entities of a related blueprint
    (`target`), optionally filtered by a search `query` and restricted to relation paths (`pathFilter`)."""
    aggregations = _require_dict(aggregations, "aggregationProperties")
    for key, agg in aggregations.items():
        path = f"aggregationProperties.{key}"
        check_key(key, path)
        agg = _require_dict(agg, path)
        _unknown(agg, AGGREGATION_KEYS, path)
        check_strings(agg, ("title", "description", "icon"), path)
        if agg.get("type", "number") != "number":
            _fail(f"{path}.type", f"must be \"number\" (an aggregation is a number), got {agg['type']!r}")
        target = agg.get("target")
        if not isinstance(target, str):
            _fail(f"{path}.target", f"must be a blueprint identifier, got {json_type_name(target)}")
        if target not in definitions:
            _fail(f"{path}.target", f"blueprint {target!r} does not exist")
        if not (_reaches(own["identifier"], target, definitions) or _reaches(target, own["identifier"], definitions)):
            _fail(f"{path}.target", f"blueprint {target!r} is not related to {own['identifier']!r}: "
                                    "no chain of relations leads from one to the other")
        _check_calculation_spec(agg.get("calculationSpec"), definitions[target], f"{path}.calculationSpec")
        if agg.get("query") is not None:
            from catalog.selectors.search import rules_validate

            rules_validate(agg["query"], blueprints=[_as_blueprint(definitions[target])], path=f"{path}.query")
        if agg.get("pathFilter") is not None:
            _check_path_filter(agg["pathFilter"], own["identifier"], target, definitions, f"{path}.pathFilter")
    return aggregations


def _check_calculation_spec(spec, target, path):
    if spec is None:
        _fail(path, "is required: {calculationBy, func, ...}")
    spec = _require_dict(spec, path)
    _unknown(spec, CALCULATION_SPEC_KEYS, path)
    by, func = spec.get("calculationBy"), spec.get("func")
    if by not in CALCULATION_BY:
        _fail(f"{path}.calculationBy", f"must be one of {list(CALCULATION_BY)}, got {by!r}")
    allowed = ENTITIES_FUNCTIONS if by == "entities" else tuple(f for f in choices.AGGREGATION_FUNCTIONS if f != "count")
    if func not in allowed:
        _fail(f"{path}.func", f"must be one of {list(allowed)} when calculating by {by}, got {func!r}")
    properties = target["schema"].get("properties", {})
    if by == "property":
        name = spec.get("property")
        if not isinstance(name, str):
            _fail(f"{path}.property", f"is required for {func} by property: a number property of {target['identifier']!r}")
        if (properties.get(name) or {}).get("type") != "number":
            _fail(f"{path}.property", f"{name!r} is not a number property of blueprint {target['identifier']!r}")
    elif "property" in spec:
        _fail(f"{path}.property", "applies to calculationBy property only")
    for option in ("averageOf", "measureTimeBy"):
        if option in spec and func != "average":
            _fail(f"{path}.{option}", "applies to func average only")
    periods = AVERAGE_OF if by == "property" else AVERAGE_OF[:-1]
    if "averageOf" in spec and spec["averageOf"] not in periods:
        _fail(f"{path}.averageOf", f"must be one of {list(periods)}, got {spec['averageOf']!r}")
    if "measureTimeBy" in spec:
        name = spec["measureTimeBy"]
        dated = isinstance(name, str) and (name in TIME_META_PROPERTIES or
                                           (properties.get(name) or {}).get("format") == "date-time")
        if not dated:
            _fail(f"{path}.measureTimeBy", f"{name!r} is neither $createdAt, $updatedAt nor a date-time property "
                                           f"of blueprint {target['identifier']!r}")


def _check_path_filter(filters, own, target, definitions, path):
    """Each `{path: [relation ids], fromBlueprint}` leads from this blueprint to the target (forwards) or,
    with `fromBlueprint` the target, from the target to this blueprint (backwards)."""
    if not isinstance(filters, list):
        _fail(path, f"must be a list of {{path, fromBlueprint}}, got {json_type_name(filters)}")
    for i, item in enumerate(filters):
        at = f"{path}[{i}]"
        item = _require_dict(item, at)
        _unknown(item, {"path", "fromBlueprint"}, at)
        start = item.get("fromBlueprint", own)
        if start not in (own, target):
            _fail(f"{at}.fromBlueprint", f"must be {own!r} or the target {target!r}, got {start!r}")
        steps = item.get("path")
        if not isinstance(steps, list) or not steps:
            _fail(f"{at}.path", "must be a non-empty list of relation ids")
        end = _follow(definitions[start], steps, definitions, f"{at}.path")["identifier"]
        goal = target if start == own else own
        if end != goal:
            _fail(f"{at}.path", f"leads from {start!r} to {end!r}, not to {goal!r}")


def _check_ownership(ownership, own, definitions):
    if ownership is None:
        return None
    ownership = _require_dict(ownership, "ownership")
    _unknown(ownership, OWNERSHIP_KEYS, "ownership")
    check_strings(ownership, ("title",), "ownership")
    if ownership.get("type") not in choices.OWNERSHIP_TYPES:
        _fail("ownership.type", f"must be one of {list(choices.OWNERSHIP_TYPES)}")
    if ownership["type"] == "Inherited":
        chain = ownership.get("path")
        if not isinstance(chain, str) or not chain:
            _fail("ownership.path", "is required: relation ids joined by dots, leading to the owning blueprint")
        _follow(own, chain.split("."), definitions, "ownership.path")
    elif "path" in ownership:
        _fail("ownership.path", "applies to Inherited ownership only")
    return ownership


def blueprint_definition_clean(data, *, blueprints):
    """Validate a Port blueprint JSON. `blueprints` maps other identifiers to their clean definitions."""
    if not isinstance(data, dict):
        raise ValidationFailed("body: must be a JSON object")
    identifier = data.get("identifier")
    check_blueprint_identifier(identifier)
    _check_stored_json(data)
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        _fail("title", "is required")
    for field in ("icon", "description"):
        if data.get(field) is not None and not isinstance(data[field], str):
            _fail(field, f"must be a string, got {json_type_name(data[field])}")
    for field in ("title", "icon"):  # columns of their own, with a length
        longest = Blueprint._meta.get_field(field).max_length
        if len(data.get(field) or "") > longest:
            _fail(field, f"must be at most {longest} characters")
    if "schema" not in data:
        _fail("schema", "is required")
    own = {
        "identifier": identifier,
        "title": title,
        "icon": data.get("icon") or "",
        "description": data.get("description") or "",
        "schema": _check_schema(data["schema"]),
    }
    own["relations"] = _check_relations(data.get("relations"), identifier, blueprints)
    definitions = {**blueprints, identifier: own}
    own["mirrorProperties"] = _check_mirrors(data.get("mirrorProperties"), own, definitions)
    own["calculationProperties"] = _check_calculations(data.get("calculationProperties"))
    own["aggregationProperties"] = _check_aggregations(data.get("aggregationProperties"), own, definitions)
    own["formulaProperties"] = _require_dict(data.get("formulaProperties"), "formulaProperties")
    own["ownership"] = _check_ownership(data.get("ownership"), own, definitions)
    if data.get("changelogDestination") is not None:
        _require_dict(data["changelogDestination"], "changelogDestination")
    own["changelogDestination"] = data.get("changelogDestination")
    taken = {}
    for group in ("schema.properties", "mirrorProperties", "calculationProperties", "aggregationProperties"):
        keys = own["schema"]["properties"] if group == "schema.properties" else own[group]
        for key in keys:
            if key in taken:
                _fail(f"{group}.{key}", f"is already defined in {taken[key]}")
            taken[key] = group
    return own
