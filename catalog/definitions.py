"""Blueprint definitions (what a platform engineer writes): their shape is checked against
catalog/schemas/blueprint.json (catalog.shapes), their meaning here — target blueprints that exist, relation
and mirror paths that resolve, jq that compiles, aggregations over related blueprints, property definitions
some value satisfies (catalog.property_definitions) — shape errors first.

`blueprint_definition_clean(data, blueprints=...)` returns the normalised definition or raises ValidationFailed
naming the JSON path at fault (`schema.properties.replicas.type`).
"""
from catalog import choices
from catalog.identifiers import check_blueprint_identifier
from catalog.property_definitions import (
    properties_schema_check, property_meaning_check, property_values_check, required_check,
)
from catalog.shapes import schema_validator, shape_check
from portal.errors import ValidationFailed
from portal.jq import JqError, jq_compile_check

TIME_META_PROPERTIES = ("$createdAt", "$updatedAt")


def _fail(path, message):
    raise ValidationFailed(message, path=path)


def _check_schema(schema):
    properties = schema.get("properties") or {}
    for key, prop in properties.items():
        property_meaning_check(prop, f"schema.properties.{key}")
    clean = {"properties": properties, "required": required_check(schema.get("required", []), properties, "schema.required")}
    properties_schema_check(clean)
    for key, prop in properties.items():
        property_values_check(prop, f"schema.properties.{key}")
    return clean


def _check_relations(relations, identifier, blueprints):
    clean = {}
    for key, rel in relations.items():
        target = rel["target"]
        if target != identifier and target not in blueprints:
            _fail(f"relations.{key}.target", f"blueprint {target!r} does not exist")
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
    for key, mirror in mirrors.items():
        path = f"mirrorProperties.{key}.path"
        chain = mirror["path"]
        steps = chain.split(".")
        if len(steps) < 2:
            _fail(path, f"{chain!r} must start with a relation and end with a property")
        current = _follow(own, steps[:-1], definitions, path)
        last = steps[-1]
        if last not in choices.META_PROPERTIES and last not in current["schema"].get("properties", {}):
            _fail(path, f"{last!r} is neither a property of {current['identifier']!r} nor a meta-property")
    return mirrors


def _check_calculations(calculations):
    for key, calc in calculations.items():
        path = f"calculationProperties.{key}"
        try:
            jq_compile_check(calc["calculation"])
        except JqError as exc:
            _fail(f"{path}.calculation", f"does not compile: {exc}")
        calc.setdefault("type", "string")
        # Its result is shown as a property of this type and format would be.
        property_meaning_check({k: v for k, v in calc.items() if k not in ("calculation", "colorized", "colors")}, path)
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
    for key, agg in aggregations.items():
        path = f"aggregationProperties.{key}"
        target = agg["target"]
        if target not in definitions:
            _fail(f"{path}.target", f"blueprint {target!r} does not exist")
        if not (_reaches(own["identifier"], target, definitions) or _reaches(target, own["identifier"], definitions)):
            _fail(f"{path}.target", f"blueprint {target!r} is not related to {own['identifier']!r}: "
                                    "no chain of relations leads from one to the other")
        _check_calculation_spec(agg["calculationSpec"], definitions[target], f"{path}.calculationSpec")
        if agg.get("query") is not None:
            from catalog.selectors.search import rules_validate

            rules_validate(agg["query"], blueprints=[_as_blueprint(definitions[target])], path=f"{path}.query")
        if agg.get("pathFilter") is not None:
            _check_path_filter(agg["pathFilter"], own["identifier"], target, definitions, f"{path}.pathFilter")
    return aggregations


def _check_calculation_spec(spec, target, path):
    properties = target["schema"].get("properties", {})
    if spec["calculationBy"] == "property":
        name = spec["property"]
        if (properties.get(name) or {}).get("type") != "number":
            _fail(f"{path}.property", f"{name!r} is not a number property of blueprint {target['identifier']!r}")
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
    for i, item in enumerate(filters):
        at = f"{path}[{i}]"
        start = item.get("fromBlueprint", own)
        if start not in (own, target):
            _fail(f"{at}.fromBlueprint", f"must be {own!r} or the target {target!r}, got {start!r}")
        end = _follow(definitions[start], item["path"], definitions, f"{at}.path")["identifier"]
        goal = target if start == own else own
        if end != goal:
            _fail(f"{at}.path", f"leads from {start!r} to {end!r}, not to {goal!r}")


def _check_ownership(ownership, own, definitions):
    if ownership is not None and ownership["type"] == "Inherited":
        _follow(own, ownership["path"].split("."), definitions, "ownership.path")
    return ownership


def blueprint_definition_clean(data, *, blueprints):
    """Validate a Port blueprint JSON. `blueprints` maps other identifiers to their clean definitions."""
    if isinstance(data, dict):
        check_blueprint_identifier(data.get("identifier"))
    shape_check(data, schema_validator("catalog", "blueprint"))
    identifier = data["identifier"]
    own = {
        "identifier": identifier,
        "title": data["title"],
        "icon": data.get("icon") or "",
        "description": data.get("description") or "",
        "schema": _check_schema(data["schema"] or {}),
    }
    own["relations"] = _check_relations(data.get("relations") or {}, identifier, blueprints)
    definitions = {**blueprints, identifier: own}
    own["mirrorProperties"] = _check_mirrors(data.get("mirrorProperties") or {}, own, definitions)
    own["calculationProperties"] = _check_calculations(data.get("calculationProperties") or {})
    own["aggregationProperties"] = _check_aggregations(data.get("aggregationProperties") or {}, own, definitions)
    own["formulaProperties"] = data.get("formulaProperties") or {}
    own["ownership"] = _check_ownership(data.get("ownership"), own, definitions)
    own["changelogDestination"] = data.get("changelogDestination")
    taken = {}
    for group in ("schema.properties", "mirrorProperties", "calculationProperties", "aggregationProperties"):
        keys = own["schema"]["properties"] if group == "schema.properties" else own[group]
        for key in keys:
            if key in taken:
                _fail(f"{group}.{key}", f"is already defined in {taken[key]}")
            taken[key] = group
    return own
