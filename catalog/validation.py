"""Entity property validation with jsonschema; one compiled validator per blueprint version."""
import ipaddress
from functools import lru_cache
from urllib.parse import urlsplit

import re2
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

from portal.datetimes import NotAnInstant, instant_canonical, instant_parse
from portal.errors import FieldError

# Keys of Port's property definitions that are presentation only.
PRESENTATION_KEYS = {"title", "description", "icon", "enumColors", "spec", "specAuthentication"}
STORAGE_KEYS = {"default", "indexed"}  # how values are kept and found, not what they may be


def _re2_pattern(validator, pattern, instance, schema):
    """User-authored patterns run on RE2: linear time, no catastrophic backtracking."""
    if isinstance(instance, str) and not _compiled(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@lru_cache(maxsize=2048)
def _compiled(pattern):
    return re2.compile(pattern)


def _required(validator, required, instance, schema):
    """A missing key is named in the error's path (`properties.config.port: is required`), at every level."""
    if validator.is_type(instance, "object"):
        for key in required:
            if key not in instance:
                yield ValidationError("is required", path=[key])


PortalValidator = validators.extend(Draft202012Validator, {"pattern": _re2_pattern, "required": _required})

format_checker = FormatChecker(formats=())


DATETIME_FORMATS = ("date-time", "timer")


@format_checker.checks("date-time", raises=ValueError)
@format_checker.checks("timer", raises=ValueError)
def _is_datetime(value):
    """The portal's one date-time type (portal/datetimes.py); its reason becomes the error message."""
    if isinstance(value, str):
        instant_parse(value)
    return True


@format_checker.checks("url", raises=ValueError)  # urlsplit refuses a bad IPv6 host ("http://[") by raising
def _is_url(value):
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


@format_checker.checks("email")
@format_checker.checks("user")
def _is_email(value):
    if not isinstance(value, str):
        return True
    local, at, domain = value.rpartition("@")
    return bool(at and local and domain and " " not in value)


@format_checker.checks("ipv4", raises=ValueError)
def _is_ipv4(value):
    return not isinstance(value, str) or bool(ipaddress.IPv4Address(value))


@format_checker.checks("ipv6", raises=ValueError)
def _is_ipv6(value):
    return not isinstance(value, str) or bool(ipaddress.IPv6Address(value))


def property_json_schema(prop):
    """A Port property definition as plain JSON Schema: presentation keys and defaults dropped, labeled-url
    widened, at every level (array items, object properties, additionalProperties)."""
    if prop.get("format") == "labeled-url":
        return {"type": ["object", "string"]}
    clean = {key: value for key, value in prop.items() if key not in PRESENTATION_KEYS and key not in STORAGE_KEYS}
    for key in ("items", "additionalProperties"):
        if isinstance(clean.get(key), dict):
            clean[key] = property_json_schema(clean[key])
    if isinstance(clean.get("properties"), dict):
        clean["properties"] = {key: property_json_schema(nested) if isinstance(nested, dict) else nested
                               for key, nested in clean["properties"].items()}
    return clean


def entity_properties_schema(schema):
    return {
        "type": "object",
        "properties": {key: property_json_schema(prop) for key, prop in schema.get("properties", {}).items()},
        "required": schema.get("required", []),
        "additionalProperties": False,
    }


def _path(error, root="properties"):
    return root + "".join(f"[{item}]" if isinstance(item, int) else f".{item}" for item in error.absolute_path)


def _sorted(errors):
    return sorted(errors, key=lambda e: (list(map(str, e.absolute_path)), e.message))


def error_message(error):
    """jsonschema's message, with the reason a format check gave where it gave one."""
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown properties (not in the blueprint)")
    if error.validator == "format" and isinstance(error.cause, NotAnInstant):
        return str(error.cause)
    return error.message


_validators = {}


def properties_validator(blueprint):
    """Compiled once per (blueprint, version, updated_at): a definition change bumps the version, and a row
    written around the service (a fixture, a restored backup) still changes updated_at."""
    key = (blueprint.pk, blueprint.version, blueprint.updated_at)
    validator = _validators.get(key)
    if validator is None:
        if len(_validators) > 1024:
            _validators.clear()
        validator = _validators[key] = PortalValidator(entity_properties_schema(blueprint.schema), format_checker=format_checker)
    return validator


def properties_errors(blueprint, properties):
    """[FieldError('properties.replicas', '0 is less than the minimum of 1'), ...] — empty when valid."""
    validator = properties_validator(blueprint)
    return [FieldError(_path(error), error_message(error)) for error in _sorted(validator.iter_errors(properties))]


def property_value_errors(prop, value, *, path="value"):
    """[FieldError('value.port', 'is required'), ...]: one value against one property definition, each error's
    path `path` and its place in the value — empty when valid."""
    validator = PortalValidator(property_json_schema(prop), format_checker=format_checker)
    return [FieldError(_path(error, path), error_message(error)) for error in _sorted(validator.iter_errors(value))]


def datetimes_canonical(definition, value):
    """`value` (already valid against `definition`) with every date-time the definition formats — itself, an
    array's items, an object's properties — in the canonical text, so stored date-times sort as instants."""
    if isinstance(value, str):
        return instant_canonical(value) if definition.get("format") in DATETIME_FORMATS else value
    items = definition.get("items")
    if isinstance(value, list) and isinstance(items, dict):
        return [datetimes_canonical(items, item) for item in value]
    if isinstance(value, dict):
        return {key: datetimes_canonical(child, item) if isinstance(child := _child_definition(definition, key), dict)
                else item for key, item in value.items()}
    return value


def _child_definition(definition, key):
    """What an object's `key` is validated against: its own definition, else `additionalProperties`."""
    nested = definition.get("properties")
    if isinstance(nested, dict) and key in nested:
        return nested[key]
    return definition.get("additionalProperties")


def _formats_datetimes(definition):
    if not isinstance(definition, dict):
        return False
    if definition.get("format") in DATETIME_FORMATS or any(
            _formats_datetimes(definition.get(key)) for key in ("items", "additionalProperties")):
        return True
    nested = definition.get("properties")
    return isinstance(nested, dict) and any(_formats_datetimes(child) for child in nested.values())


_datetime_keys = {}


def properties_canonical(blueprint, properties):
    """Valid entity properties with their date-times in canonical text (the keys that can hold one are found
    once per blueprint version)."""
    key = (blueprint.pk, blueprint.version)
    keys = _datetime_keys.get(key)
    if keys is None:
        if len(_datetime_keys) > 1024:
            _datetime_keys.clear()
        definitions = blueprint.schema.get("properties", {})
        keys = _datetime_keys[key] = [k for k, d in definitions.items() if _formats_datetimes(d)]
    if not keys or not any(k in properties for k in keys):
        return properties
    definitions = blueprint.schema["properties"]
    return {k: datetimes_canonical(definitions[k], v) if k in keys else v for k, v in properties.items()}
