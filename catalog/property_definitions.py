"""Validation of property definitions (`schema.properties.<key>`, and every object property and array
`items` under it, with the same rules), in three passes over a blueprint's schema:

- `property_definition_check(prop, path)`: the shape — every value of the right JSON type, keys that mean
  something for the property's type only, known formats, RE2 patterns, bounds that leave some value;
- `properties_schema_check(schema)`: the entity JSON Schema built from it is one jsonschema accepts;
- `property_values_check(prop, path)`: no `enum` option or `const` the rest of the definition refuses,
  no `default` that fails its own property — a definition no value satisfies is refused when it is saved
  rather than failing every entity write.

Each raises ValidationFailed naming the JSON path at fault (`schema.properties.config.properties.port.type: ...`).
"""
import math
import re
import warnings

import re2
from jsonschema import Draft202012Validator, SchemaError

from catalog import choices
from catalog.identifiers import check_key
from catalog.validation import entity_properties_schema, property_value_errors
from portal.errors import ValidationFailed

MAX_DEPTH = 8  # object properties / array items nested under a top-level property
PRESENTATION = ("title", "description", "icon")
# Keys that mean something for properties of one type only.
TYPE_KEYS = {
    "string": ("pattern", "minLength", "maxLength"),
    "number": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"),
    "array": ("items", "minItems", "maxItems", "uniqueItems"),
    "object": ("properties", "required", "additionalProperties"),
}
PROPERTY_KEYS = {"type", "format", *PRESENTATION, "enum", "enumColors", "default", "const", "spec", "specAuthentication",
                 *(key for keys in TYPE_KEYS.values() for key in keys)}
LABELED_URL_KEYS = {"type", "format", *PRESENTATION, "default"}  # its value is a URL or {url, displayText}
JSON_TYPES = {"string": str, "boolean": bool, "object": dict, "array": list}


def _fail(path, message):
    raise ValidationFailed(message, path=path)


def json_type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def is_json_type(value, type_name):
    if type_name == "number":
        return isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and math.isfinite(value)
    return isinstance(value, JSON_TYPES[type_name])


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_strings(data, keys, path):
    for key in keys:
        if key in data and not isinstance(data[key], str):
            _fail(f"{path}.{key}", f"must be a string, got {json_type_name(data[key])}")


def check_enum(prop, type_name, path, *, allow_null=True):
    """`enum` (non-empty, unique, of the property's type) and `enumColors` (colours for enum values only);
    shared by blueprint properties and action inputs."""
    if "enum" in prop:
        enum = prop["enum"]
        if not isinstance(enum, list) or not enum:
            _fail(f"{path}.enum", "must be a non-empty list")
        for i, option in enumerate(enum):
            if not (allow_null and option is None) and not is_json_type(option, type_name):
                _fail(f"{path}.enum[{i}]", f"{option!r} is not of type {type_name}")
        if all(option is None for option in enum):
            _fail(f"{path}.enum", f"has no value of type {type_name}")
        if len({repr(o) for o in enum}) != len(enum):
            _fail(f"{path}.enum", "values must be unique")
    if "enumColors" in prop:
        colors = prop["enumColors"]
        if not isinstance(colors, dict):
            _fail(f"{path}.enumColors", f"must be an object, got {json_type_name(colors)}")
        if "enum" not in prop:
            _fail(f"{path}.enumColors", "needs an enum")
        extra = [k for k in colors if k not in [str(o) for o in prop["enum"]]]
        if extra:
            _fail(f"{path}.enumColors", f"colours for values not in enum: {extra}")
        for key, color in colors.items():
            if not isinstance(color, str) or not color:
                _fail(f"{path}.enumColors.{key}", "must be a colour name")


def check_required(required, properties, path):
    """A `required` list naming keys of `properties`; returned without repeats."""
    if not isinstance(required, list):
        _fail(path, f"must be a list of property keys, got {json_type_name(required)}")
    for i, key in enumerate(required):
        if not isinstance(key, str):
            _fail(f"{path}[{i}]", f"must be a property key, got {json_type_name(key)}")
        if key not in properties:
            _fail(f"{path}[{i}]", f"{key!r} is not one of the properties defined")
    return list(dict.fromkeys(required))


def children(prop, path):
    """(definition, path) of the property definitions directly under `prop`: items, properties, additionalProperties."""
    if isinstance(prop.get("items"), dict):
        yield prop["items"], f"{path}.items"
    for key, nested in (prop.get("properties") or {}).items():
        yield nested, f"{path}.properties.{key}"
    if isinstance(prop.get("additionalProperties"), dict):
        yield prop["additionalProperties"], f"{path}.additionalProperties"


# --- shape ------------------------------------------------------------------------------------------------

def property_definition_check(prop, path, *, depth=0):
    """The shape of one property definition and of every definition nested in it."""
    if not isinstance(prop, dict):
        _fail(path, f"must be a property definition (an object), got {json_type_name(prop)}")
    if depth > MAX_DEPTH:
        _fail(path, f"nests deeper than {MAX_DEPTH} levels of object properties and array items")
    unknown = set(prop) - PROPERTY_KEYS
    if unknown:
        _fail(path, f"unknown keys {sorted(unknown)}")
    type_name = prop.get("type")
    if not isinstance(type_name, str) or type_name not in choices.PROPERTY_TYPES:
        _fail(f"{path}.type", f"must be one of {list(choices.PROPERTY_TYPES)}, got {type_name!r}")
    check_strings(prop, PRESENTATION, path)
    for owner, keys in TYPE_KEYS.items():
        for key in keys:
            if key in prop and type_name != owner:
                _fail(f"{path}.{key}", f"applies to {owner} properties only")
    if "format" in prop:
        _check_format(prop, type_name, path, depth)
    if "spec" in prop and prop["spec"] not in choices.SPEC_KINDS:
        _fail(f"{path}.spec", f"must be one of {list(choices.SPEC_KINDS)}")
    if "specAuthentication" in prop and not isinstance(prop["specAuthentication"], dict):
        _fail(f"{path}.specAuthentication", "must be an object")
    check_enum(prop, type_name, path)
    if "pattern" in prop:
        check_pattern(prop["pattern"], f"{path}.pattern")
    _check_bounds(prop, path)
    if type_name == "array" and "items" in prop:
        _check_items(prop["items"], f"{path}.items", depth)
    if type_name == "object":
        _check_object(prop, path, depth)


def _check_format(prop, type_name, path, depth):
    fmt = prop["format"]
    if not isinstance(fmt, str) or fmt not in choices.STRING_FORMATS:
        _fail(f"{path}.format", f"must be one of {list(choices.STRING_FORMATS)}, got {fmt!r}")
    if fmt == "labeled-url":
        if type_name not in ("string", "object"):
            _fail(f"{path}.format", "labeled-url applies to string and object properties only")
        extra = sorted(set(prop) - LABELED_URL_KEYS)
        if extra:
            _fail(f"{path}.{extra[0]}", "does not apply to labeled-url properties")
    elif type_name != "string":
        _fail(f"{path}.format", f"format {fmt!r} applies to string properties only")
    if fmt == "timer" and depth:
        _fail(f"{path}.format", "a timer must be a top-level property (nested in an object or array it never expires)")


def _error_text(exc):
    """RE2 hands its message over as bytes (`b'missing ): (a'`)."""
    detail = exc.args[0] if exc.args else exc
    return detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)


def check_pattern(pattern, path):
    """Entity values are matched with RE2; the pattern must also be a JSON Schema `regex` (clients and
    jsonschema's own checks compile it with a backtracking engine)."""
    if not isinstance(pattern, str):
        _fail(path, f"must be a string, got {json_type_name(pattern)}")
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


def _check_bounds(prop, path):
    for key in TYPE_KEYS["number"]:
        if key in prop and not is_json_type(prop[key], "number"):
            _fail(f"{path}.{key}", f"must be a number, got {json_type_name(prop[key])}")
    for key in ("minLength", "maxLength", "minItems", "maxItems"):
        if key in prop and not _is_count(prop[key]):
            _fail(f"{path}.{key}", "must be a non-negative integer")
    if "uniqueItems" in prop and not isinstance(prop["uniqueItems"], bool):
        _fail(f"{path}.uniqueItems", "must be true or false")
    for low in ("minimum", "exclusiveMinimum"):
        for high in ("maximum", "exclusiveMaximum"):
            if low in prop and high in prop and (prop[low] > prop[high] or
                                                 prop[low] == prop[high] and "exclusive" in low + high):
                _fail(f"{path}.{low}", f"leaves no number: {low} {prop[low]} and {high} {prop[high]}")
    for low, high in (("minLength", "maxLength"), ("minItems", "maxItems")):
        if low in prop and high in prop and prop[low] > prop[high]:
            _fail(f"{path}.{low}", f"is greater than {high} ({prop[low]} > {prop[high]})")


def _check_items(items, path, depth):
    if isinstance(items, list):
        _fail(path, "must be one property definition (an object): a list (tuple validation) is not supported")
    if not isinstance(items, dict):
        _fail(path, f"must be a property definition (an object), got {json_type_name(items)}")
    if "type" not in items:
        _fail(f"{path}.type", f"is required: one of {list(choices.PROPERTY_TYPES)}")
    property_definition_check(items, path, depth=depth + 1)


def _check_object(prop, path, depth):
    properties = prop.get("properties", {})
    if not isinstance(properties, dict):
        _fail(f"{path}.properties", f"must be an object, got {json_type_name(properties)}")
    for key, nested in properties.items():
        check_key(key, f"{path}.properties.{key}")
        property_definition_check(nested, f"{path}.properties.{key}", depth=depth + 1)
    if "required" in prop:
        prop["required"] = check_required(prop["required"], properties, f"{path}.required")
    extra = prop.get("additionalProperties", True)
    if isinstance(extra, dict):
        property_definition_check(extra, f"{path}.additionalProperties", depth=depth + 1)
    elif not isinstance(extra, bool):
        _fail(f"{path}.additionalProperties", "must be true, false or a property definition")


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
    errors = property_value_errors(prop, value, path=path)
    if errors:
        raise ValidationFailed(errors[0])


def _distinct_values(items):
    """How many values an array item may take, when that is a small known number."""
    if not isinstance(items, dict):
        return None
    if "const" in items:
        return 1
    if "enum" in items:
        return sum(1 for option in items["enum"] if option is not None)
    return 2 if items.get("type") == "boolean" else None
