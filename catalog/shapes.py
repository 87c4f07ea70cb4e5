"""Shape checks of definitions against the JSON Schema documents kept beside them (catalog/schemas/,
actions/schemas/), their errors as the API names them: `FieldError("schema.properties.replicas.type",
"must be one of [...], got 'strin'")`.

A schema may word its own messages with the annotation keyword `x-message`, on the subschema holding the
failing keyword: a text for any failure there, or texts by keyword (`{"type": "...", "required": "..."}`),
`required` also by the key missing (`{"required": {"target": "..."}}`).
A text may name `{value}` (the value at fault, `{value!r}` quoted), `{type}` (its type: JSON's name, or Python's
where the root schema says `"x-type-names": "python"`) and `{expected}` (the keyword's value in the schema).
Without one, the keyword's message below is used.

Of several errors the first in the document is reported (an object's own errors before its members'; a
missing key after the keys present); at one place, the first the schema lists. Before any of that, a value
PostgreSQL cannot store (NUL, a non-finite number) or nested deeper than API_MAX_JSON_DEPTH is refused naming
its path, so a hostile document can exhaust neither the database nor the validator's stack.
"""
import json
from functools import cache
from importlib import resources

from django.conf import settings
from jsonschema import Draft202012Validator

from portal import strictjson
from portal.errors import FieldError, ValidationFailed

TYPE_MESSAGES = {
    "object": "must be an object, got {type}",
    "array": "must be a list, got {type}",
    "string": "must be a string, got {type}",
    "number": "must be a number, got {type}",
    "integer": "must be an integer, got {type}",
    "boolean": "must be true or false",
    "null": "must be null, got {type}",
}
KEYWORD_MESSAGES = {
    "enum": "must be one of {expected}, got {value!r}",
    "const": "must be {expected_json}, got {value!r}",
    "required": "is required",
    "minLength": "must be at least {expected} characters",
    "maxLength": "must be at most {expected} characters",
    "minimum": "must be at least {expected}",
    "maximum": "must be at most {expected}",
    "minItems": "must have at least {expected} items",
    "uniqueItems": "values must be unique",
    "pattern": "{value!r} does not match {expected!r}",
}


@cache
def schema_validator(package, name):
    """The validator of the schema document `<package>/schemas/<name>.json` (checked once, on first use)."""
    schema = json.loads(resources.files(package).joinpath("schemas", f"{name}.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def json_type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def python_type_name(value):
    return type(value).__name__


def path_text(steps, root=""):
    """`schema.properties.x.enum[2]`: keys joined by dots, list indexes in brackets."""
    text = root
    for step in steps:
        if isinstance(step, int):
            text = f"{text}[{step}]"
        else:
            text = f"{text}.{step}" if text else str(step)
    return text


def shape_check(document, validator, *, root="body"):
    """Raise ValidationFailed naming the first place where `document` does not have the shape `validator`
    holds (see the module docstring); `root` names the document as a whole."""
    unstorable = strictjson.problem_at(document, max_depth=settings.API_MAX_JSON_DEPTH)
    if unstorable is not None:
        raise ValidationFailed(unstorable.message, path=root if unstorable.path == "body" else unstorable.path)
    errors = list(validator.iter_errors(document))
    if errors:
        first = min(enumerate(errors), key=lambda numbered: (_position(document, numbered[1]), numbered[0]))[1]
        type_name = python_type_name if validator.schema.get("x-type-names") == "python" else json_type_name
        raise ValidationFailed(errors=[_field_error(first, root, type_name)])


def _position(document, error):
    """Where `error` is in the document, as indexes from the root (a key's place among its object's keys), so
    errors sort in document order; a missing key sorts after the keys present."""
    position, node = [], document
    for step in error.absolute_path:
        if isinstance(node, dict):
            position.append(list(node).index(step))
        else:
            position.append(step)
        node = node[step]
    if error.validator == "required" and isinstance(node, dict):
        position.append(len(node))
    elif _under_property_names(error):
        position.append(list(node).index(error.instance) if isinstance(node, dict) else 0)
    return position


def _under_property_names(error):
    return "propertyNames" in error.relative_schema_path


def _field_error(error, root, type_name):
    steps = list(error.absolute_path)
    if error.validator == "required":
        missing = next(key for key in error.validator_value if key not in error.instance)
        steps.append(missing)
        value = None
    elif _under_property_names(error):
        steps.append(error.instance)
        value = error.instance
    else:
        value = error.instance
    path = path_text(steps)
    return FieldError(path or root, _message(error, value, steps[-1] if steps else None, type_name))


def _message(error, value, key, type_name):
    custom = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    if isinstance(custom, dict):
        custom = custom.get(error.validator)
    if isinstance(custom, dict):  # required, by the key missing
        custom = custom.get(key)
    if custom is None and error.validator == "type":
        expected = error.validator_value if isinstance(error.validator_value, str) else \
            next(t for t in error.validator_value if t != "null")
        custom = TYPE_MESSAGES.get(expected)
    if custom is None and error.validator == "additionalProperties" and error.validator_value is False:
        known = error.schema.get("properties", {})
        return f"unknown keys {sorted(key for key in error.instance if key not in known)}"
    if custom is None:
        custom = KEYWORD_MESSAGES.get(error.validator)
    if custom is None:
        return error.message
    return custom.format(value=value, type=type_name(value), expected=error.validator_value,
                         expected_json=json.dumps(error.validator_value))
