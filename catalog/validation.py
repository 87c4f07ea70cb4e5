"""Entity property validation with jsonschema; one compiled validator per blueprint version."""
import ipaddress
from datetime import datetime
from functools import lru_cache
from urllib.parse import urlsplit

import re2
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

# Keys of Port's property definitions that are presentation only.
PRESENTATION_KEYS = {"title", "description", "icon", "enumColors", "spec", "specAuthentication"}


def _re2_pattern(validator, pattern, instance, schema):
    """User-authored patterns run on RE2: linear time, no catastrophic backtracking."""
    if isinstance(instance, str) and not _compiled(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@lru_cache(maxsize=2048)
def _compiled(pattern):
    return re2.compile(pattern)


PortalValidator = validators.extend(Draft202012Validator, {"pattern": _re2_pattern})

format_checker = FormatChecker(formats=())


@format_checker.checks("date-time", raises=ValueError)
@format_checker.checks("timer", raises=ValueError)
def _is_datetime(value):
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value.replace("z", "Z"))
    if "T" not in value.upper() or parsed.tzinfo is None:
        raise ValueError("needs a date, a time and a UTC offset or Z")
    return True


@format_checker.checks("url")
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
    """A Port property definition as plain JSON Schema (presentation keys dropped)."""
    clean = {key: value for key, value in prop.items() if key not in PRESENTATION_KEYS and key != "default"}
    if clean.get("format") == "labeled-url":
        clean = {"type": ["object", "string"]}
    if "items" in clean and isinstance(clean["items"], dict):
        clean["items"] = property_json_schema(clean["items"])
    if "enum" in clean and None not in clean["enum"]:
        clean["enum"] = list(clean["enum"])
    return clean


def entity_properties_schema(schema):
    return {
        "type": "object",
        "properties": {key: property_json_schema(prop) for key, prop in schema.get("properties", {}).items()},
        "required": schema.get("required", []),
        "additionalProperties": False,
    }


def _path(error):
    parts = ["properties"]
    for item in error.absolute_path:
        parts.append(f"[{item}]" if isinstance(item, int) else f".{item}")
    return "".join(parts).replace(".[", "[")


def _message(error):
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown properties (not in the blueprint)")
    if error.validator == "required":
        return error.message
    return error.message


_validators = {}


def properties_validator(blueprint):
    """Compiled once per (blueprint, version); a definition change bumps the version."""
    key = (blueprint.pk, blueprint.version)
    validator = _validators.get(key)
    if validator is None:
        if len(_validators) > 1024:
            _validators.clear()
        validator = _validators[key] = PortalValidator(entity_properties_schema(blueprint.schema), format_checker=format_checker)
    return validator


def properties_errors(blueprint, properties):
    """['properties.replicas: 0 is less than the minimum of 1', ...] — empty when valid."""
    validator = properties_validator(blueprint)
    errors = sorted(validator.iter_errors(properties), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    return [f"{_path(error)}: {_message(error)}" for error in errors]


def property_value_errors(prop, value):
    validator = PortalValidator(property_json_schema(prop), format_checker=format_checker)
    return [error.message for error in validator.iter_errors(value)]
