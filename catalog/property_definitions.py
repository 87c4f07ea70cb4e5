"""What a property definition (`schema.properties.<key>`, and every object property and array `items` under
it) means, checked after its shape (catalog/schemas/blueprint.json, `$defs/property`), in three passes:

- `property_meaning_check(prop, path)`: no deeper than MAX_DEPTH, RE2 patterns, bounds that leave some
  value, `required` keys and `enumColors` values that are defined;
- `properties_schema_check(schema)`: the entity JSON Schema built from it is one jsonschema accepts;
- `property_values_check(prop, path)`: no `enum` option or `const` the rest of the definition refuses,
  no `default` that fails its own property — a definition no value satisfies is refused when it is saved
  rather than failing every entity write.

Each raises ValidationFailed naming the JSON path at fault (`schema.properties.config.properties.port.minimum`).
"""
import re
import warnings

import re2
from jsonschema import Draft202012Validator, SchemaError

from catalog.shapes import path_text
from catalog.validation import (
    PortalValidator, entity_properties_schema, error_message, format_checker, property_json_schema,
)
from portal.errors import ValidationFailed

MAX_DEPTH = 8  # object properties / array items nested under a top-level property
NUMBER_BOUNDS = (("minimum", "maximum"), ("minimum", "exclusiveMaximum"), ("exclusiveMinimum", "maximum"),
                 ("exclusiveMinimum", "exclusiveMaximum"))
COUNT_BOUNDS = (("minLength", "maxLength"), ("minItems", "maxItems"))


def _fail(path, message):
    raise ValidationFailed(message, path=path)


def children(prop, path):
    """(definition, path) of the property definitions directly under `prop`: items, properties, additionalProperties."""
    if isinstance(prop.get("items"), dict):
        yield prop["items"], f"{path}.items"
    for key, nested in (prop.get("properties") or {}).items():
        yield nested, f"{path}.properties.{key}"
    if isinstance(prop.get("additionalProperties"), dict):
        yield prop["additionalProperties"], f"{path}.additionalProperties"


def required_check(required, properties, path):
    """A `required` list (its shape checked) naming keys of `properties`; returned without repeats."""
    for i, key in enumerate(required):
        if key not in properties:
            _fail(f"{path}[{i}]", f"{key!r} is not one of the properties defined")
    return list(dict.fromkeys(required))


def enum_colours_check(prop, path):
    """`enumColors` (its shape checked) colours values of `enum` only; shared by blueprint properties and
    action inputs."""
    if "enumColors" in prop:
        if "enum" not in prop:
            _fail(f"{path}.enumColors", "needs an enum")
        extra = [key for key in prop["enumColors"] if key not in [str(option) for option in prop["enum"]]]
        if extra:
            _fail(f"{path}.enumColors", f"colours for values not in enum: {extra}")


def bounds_check(prop, path):
    """Bounds (their types checked) that leave some value; shared by blueprint properties and action inputs."""
    for low, high in NUMBER_BOUNDS:
        if low in prop and high in prop and (prop[low] > prop[high] or
                                             prop[low] == prop[high] and "exclusive" in low + high):
            _fail(f"{path}.{low}", f"leaves no number: {low} {prop[low]} and {high} {prop[high]}")
    for low, high in COUNT_BOUNDS:
        if low in prop and high in prop and prop[low] > prop[high]:
            _fail(f"{path}.{low}", f"is greater than {high} ({prop[low]} > {prop[high]})")


def _error_text(exc):
    """RE2 hands its message over as bytes (`b'missing ): (a'`)."""
    detail = exc.args[0] if exc.args else exc
    return detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)


def check_pattern(pattern, path):
    """Entity values are matched with RE2; the pattern must also be a JSON Schema `regex` (clients and
    jsonschema's own checks compile it with a backtracking engine)."""
    try:
        re2.compile(pattern)
    except Exception as exc:
        _fail(path, f"is not a valid regular expression ({_error_text(exc)})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            re.compile(pattern)
    except re.error as exc:
        _fail(path, f"is not a regular expression JSON Schema validators accept ({exc})")


def property_meaning_check(prop, path, *, depth=0):
    """One property definition of the right shape, and every definition nested in it: see the module docstring.
    Normalises `required` lists (no repeats)."""
    if depth > MAX_DEPTH:
        _fail(path, f"nests deeper than {MAX_DEPTH} levels of object properties and array items")
    enum_colours_check(prop, path)
    if "pattern" in prop:
        check_pattern(prop["pattern"], f"{path}.pattern")
    bounds_check(prop, path)
    if "required" in prop:
        prop["required"] = required_check(prop["required"], prop.get("properties") or {}, f"{path}.required")
    for nested, nested_path in children(prop, path):
        property_meaning_check(nested, nested_path, depth=depth + 1)


# --- the generated JSON Schema ----------------------------------------------------------------------------

def properties_schema_check(schema, path="schema"):
    """jsonschema's own verdict on the entity schema `schema` ({properties, required}) generates, its
    error path mapped back to the definition (the two have the same shape)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Draft202012Validator.check_schema(entity_properties_schema(schema))
    except SchemaError as exc:
        at = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in exc.absolute_path)
        _fail(f"{path}{at}", exc.message)


# --- values -----------------------------------------------------------------------------------------------

def property_values_check(prop, path):
    """Refuse what no value satisfies, at every level: enum options and `const` the rest of the definition
    refuses, too few distinct values for `uniqueItems` + `minItems`, a `default` that fails its own property.
    Run after the shape and schema checks (it validates values with jsonschema)."""
    for nested, nested_path in children(prop, path):
        property_values_check(nested, nested_path)
    for i, option in enumerate(prop.get("enum") or []):
        if option is not None:
            _value_accepted({k: v for k, v in prop.items() if k != "enum"}, option, f"{path}.enum[{i}]")
    if "const" in prop:
        _value_accepted({k: v for k, v in prop.items() if k != "const"}, prop["const"], f"{path}.const")
    distinct = _distinct_values(prop.get("items"))
    if prop.get("uniqueItems") and distinct is not None and prop.get("minItems", 0) > distinct:
        _fail(f"{path}.minItems", f"asks for {prop['minItems']} distinct items but items allow {distinct} value(s)")
    if "default" in prop:
        _value_accepted(prop, prop["default"], f"{path}.default")


def _value_accepted(prop, value, path):
    """`value` satisfies `prop`, or ValidationFailed naming where in it (`...default.port`) it does not."""
    validator = PortalValidator(property_json_schema(prop), format_checker=format_checker)
    error = min(validator.iter_errors(value), key=lambda e: (list(map(str, e.absolute_path)), e.message), default=None)
    if error is not None:
        raise ValidationFailed(error_message(error), path=path_text(error.absolute_path, path))


def _distinct_values(items):
    """How many values an array item may take, when that is a small known number."""
    if not isinstance(items, dict):
        return None
    if "const" in items:
        return 1
    if "enum" in items:
        return sum(1 for option in items["enum"] if option is not None)
    return 2 if items.get("type") == "boolean" else None
