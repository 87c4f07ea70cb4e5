"""Validation of blueprint definitions (what a platform engineer writes), field by field.

`blueprint_definition_clean(data, blueprints=...)` returns the normalised definition or raises
ValidationFailed whose message starts with the JSON path at fault (`schema.properties.replicas.type`).
"""
import re2

from catalog import choices
from catalog.identifiers import check_blueprint_identifier, check_key
from portal.errors import PortalError, ValidationFailed
from portal.jq import JqError, jq_compile_check

PROPERTY_KEYS = {
    "type", "format", "title", "description", "icon", "enum", "enumColors", "default", "pattern", "items",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems",
    "uniqueItems", "spec", "specAuthentication", "properties", "required", "additionalProperties", "const",
}
JSON_TYPES = {"string": str, "number": (int, float), "boolean": bool, "object": dict, "array": list}


def _fail(path, message):
    raise ValidationFailed(f"{path}: {message}")


def _require_dict(value, path):
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(path, f"must be an object, got {type(value).__name__}")
    return value


def _matches_type(value, type_name):
    expected = JSON_TYPES[type_name]
    if type_name == "number" and isinstance(value, bool):
        return False
    return isinstance(value, expected)


def check_enum(prop, type_name, path, *, allow_null=True):
    """`enum` (non-empty, unique, of the property's type) and `enumColors` (colours for enum values only);
    shared by blueprint properties and action inputs."""
    if "enum" in prop:
        enum = prop["enum"]
        if not isinstance(enum, list) or not enum:
            _fail(f"{path}.enum", "must be a non-empty list")
        for i, option in enumerate(enum):
            if not (allow_null and option is None) and not _matches_type(option, type_name):
                _fail(f"{path}.enum[{i}]", f"{option!r} is not of type {type_name}")
        if len({repr(o) for o in enum}) != len(enum):
            _fail(f"{path}.enum", "values must be unique")
    if "enumColors" in prop:
        colors = _require_dict(prop["enumColors"], f"{path}.enumColors")
        if "enum" not in prop:
            _fail(f"{path}.enumColors", "needs an enum")
        extra = [k for k in colors if k not in [str(o) for o in prop["enum"]]]
        if extra:
            _fail(f"{path}.enumColors", f"colours for values not in enum: {extra}")
        for key, color in colors.items():
            if not isinstance(color, str) or not color:
                _fail(f"{path}.enumColors.{key}", "must be a colour name")


def _check_property(prop, path):
    if not isinstance(prop, dict):
        _fail(path, "must be an object")
    unknown = set(prop) - PROPERTY_KEYS
    if unknown:
        _fail(path, f"unknown keys {sorted(unknown)}")
    type_name = prop.get("type")
    if type_name not in choices.PROPERTY_TYPES:
        _fail(f"{path}.type", f"must be one of {list(choices.PROPERTY_TYPES)}, got {type_name!r}")
    fmt = prop.get("format")
    if fmt is not None:
        if type_name != "string" and not (type_name == "object" and fmt == "labeled-url"):
            _fail(f"{path}.format", f"format {fmt!r} applies to string properties only")
        if fmt not in choices.STRING_FORMATS:
            _fail(f"{path}.format", f"must be one of {list(choices.STRING_FORMATS)}, got {fmt!r}")
    if "spec" in prop and prop["spec"] not in choices.SPEC_KINDS:
        _fail(f"{path}.spec", f"must be one of {list(choices.SPEC_KINDS)}")
    check_enum(prop, type_name, path)
    if "pattern" in prop:
        if type_name != "string":
            _fail(f"{path}.pattern", "applies to string properties only")
        try:
            re2.compile(prop["pattern"])
        except Exception as exc:
            _fail(f"{path}.pattern", f"is not a valid regular expression ({exc})")
    for bound in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if bound in prop and (prop.get("type") != "number" or not _matches_type(prop[bound], "number")):
            _fail(f"{path}.{bound}", "must be a number on a number property")
    for bound in ("minLength", "maxLength", "minItems", "maxItems"):
        if bound in prop and (not isinstance(prop[bound], int) or isinstance(prop[bound], bool) or prop[bound] < 0):
            _fail(f"{path}.{bound}", "must be a non-negative integer")
    if "minimum" in prop and "maximum" in prop and prop["minimum"] > prop["maximum"]:
        _fail(f"{path}.minimum", "is greater than maximum")
    if type_name == "array" and "items" in prop:
        items = _require_dict(prop["items"], f"{path}.items")
        if "type" in items:
            _check_property(items, f"{path}.items")
    if "default" in prop:
        from catalog.validation import property_value_errors

        errors = property_value_errors(prop, prop["default"])
        if errors:
            _fail(f"{path}.default", errors[0])


def _check_schema(schema):
    schema = _require_dict(schema, "schema")
    unknown = set(schema) - {"properties", "required", "type", "additionalProperties"}
    if unknown:
        _fail("schema", f"unknown keys {sorted(unknown)}")
    properties = _require_dict(schema.get("properties"), "schema.properties")
    for key, prop in properties.items():
        check_key(key, f"schema.properties.{key}")
        _check_property(prop, f"schema.properties.{key}")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        _fail("schema.required", "must be a list of property identifiers")
    for key in required:
        if key not in properties:
            _fail("schema.required", f"{key!r} is not a property of the schema")
    return {"properties": properties, "required": list(dict.fromkeys(required))}


def _check_relations(relations, identifier, blueprints):
    relations = _require_dict(relations, "relations")
    clean = {}
    for key, rel in relations.items():
        path = f"relations.{key}"
        check_key(key, path)
        rel = _require_dict(rel, path)
        unknown = set(rel) - {"target", "required", "many", "title", "description"}
        if unknown:
            _fail(path, f"unknown keys {sorted(unknown)}")
        target = rel.get("target")
        if not isinstance(target, str) or (target != identifier and target not in blueprints):
            _fail(f"{path}.target", f"blueprint {target!r} does not exist")
        for flag in ("required", "many"):
            if not isinstance(rel.get(flag, False), bool):
                _fail(f"{path}.{flag}", "must be true or false")
        clean[key] = {
            "target": target,
            "required": rel.get("required", False),
            "many": rel.get("many", False),
            **{k: rel[k] for k in ("title", "description") if k in rel},
        }
    return clean


def _definition_of(identifier, blueprints, own):
    return own if identifier == own["identifier"] else blueprints[identifier]


def _check_mirrors(mirrors, own, blueprints):
    mirrors = _require_dict(mirrors, "mirrorProperties")
    for key, mirror in mirrors.items():
        path = f"mirrorProperties.{key}"
        check_key(key, path)
        mirror = _require_dict(mirror, path)
        chain = mirror.get("path")
        if not isinstance(chain, str) or not chain:
            _fail(f"{path}.path", "is required: relation ids joined by dots, ending in a property or meta-property")
        steps = chain.split(".")
        if len(steps) < 2:
            _fail(f"{path}.path", f"{chain!r} must start with a relation and end with a property")
        current = own
        for step in steps[:-1]:
            relation = current["relations"].get(step)
            if relation is None:
                _fail(f"{path}.path", f"{step!r} is not a relation of blueprint {current['identifier']!r}")
            current = _definition_of(relation["target"], blueprints, own)
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
        expression = calc.get("calculation")
        if not isinstance(expression, str) or not expression.strip():
            _fail(f"{path}.calculation", "is required: a jq expression over the entity")
        try:
            jq_compile_check(expression)
        except JqError as exc:
            _fail(f"{path}.calculation", f"does not compile: {exc}")
        if calc.get("type", "string") not in choices.PROPERTY_TYPES:
            _fail(f"{path}.type", f"must be one of {list(choices.PROPERTY_TYPES)}")
        calc.setdefault("type", "string")
    return calculations


def _check_aggregations(aggregations, own, blueprints):
    aggregations = _require_dict(aggregations, "aggregationProperties")
    for key, agg in aggregations.items():
        path = f"aggregationProperties.{key}"
        check_key(key, path)
        agg = _require_dict(agg, path)
        target = agg.get("target")
        if target != own["identifier"] and target not in blueprints:
            _fail(f"{path}.target", f"blueprint {target!r} does not exist")
        spec = _require_dict(agg.get("calculationSpec"), f"{path}.calculationSpec")
        func = spec.get("func")
        if func not in choices.AGGREGATION_FUNCTIONS:
            _fail(f"{path}.calculationSpec.func", f"must be one of {list(choices.AGGREGATION_FUNCTIONS)}")
        if func != "count" and not isinstance(spec.get("property"), str):
            _fail(f"{path}.calculationSpec.property", f"is required for {func}")
    return aggregations


def _check_ownership(ownership, relations):
    if ownership is None:
        return None
    ownership = _require_dict(ownership, "ownership")
    if ownership.get("type") not in choices.OWNERSHIP_TYPES:
        _fail("ownership.type", f"must be one of {list(choices.OWNERSHIP_TYPES)}")
    if ownership["type"] == "Inherited":
        first = str(ownership.get("path", "")).split(".")[0]
        if first not in relations:
            _fail("ownership.path", f"{ownership.get('path')!r} must start with a relation of this blueprint")
    return ownership


def blueprint_definition_clean(data, *, blueprints):
    """Validate a Port blueprint JSON. `blueprints` maps other identifiers to their clean definitions."""
    if not isinstance(data, dict):
        raise ValidationFailed("body: must be a JSON object")
    identifier = data.get("identifier")
    check_blueprint_identifier(identifier)
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        _fail("title", "is required")
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
    own["mirrorProperties"] = _check_mirrors(data.get("mirrorProperties"), own, blueprints)
    own["calculationProperties"] = _check_calculations(data.get("calculationProperties"))
    own["aggregationProperties"] = _check_aggregations(data.get("aggregationProperties"), own, blueprints)
    own["formulaProperties"] = _require_dict(data.get("formulaProperties"), "formulaProperties")
    own["ownership"] = _check_ownership(data.get("ownership"), own["relations"])
    own["changelogDestination"] = data.get("changelogDestination")
    for field in ("icon", "description"):
        if not isinstance(own[field], str):
            _fail(field, "must be a string")
    taken = {}
    for group in ("schema.properties", "mirrorProperties", "calculationProperties", "aggregationProperties"):
        keys = own["schema"]["properties"] if group == "schema.properties" else own[group]
        for key in keys:
            if key in taken:
                _fail(f"{group}.{key}", f"is already defined in {taken[key]}")
            taken[key] = group
    return own


__all__ = ["blueprint_definition_clean", "PortalError"]
