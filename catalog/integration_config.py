"""An integration's mapping config (Port's `config`: resources with jq selectors and entity mappings, plus the
four switches), checked at the field: a refusal names the path, e.g.
`config.resources[2].port.entity.mappings.identifier: jq does not compile: ...`.

Keys we do not know are kept: an integration's own config class adds its own (GitHub's `repositoryType`,
a selector's `includeArchived`, ...), and Ocean validates those itself."""
import json

from portal.errors import ValidationFailed
from portal.jq import JqError, jq_compile_check

SWITCHES = ("deleteDependentEntities", "createMissingRelatedEntities", "enableMergeEntity")
MAPPING_JQ_KEYS = ("identifier", "title", "blueprint", "team", "icon")


def _fail(path, message):
    raise ValidationFailed(message, path=path)


def _object(value, path):
    if not isinstance(value, dict):
        _fail(path, "must be an object")
    return value


def _jq(value, path):
    if not isinstance(value, str):
        _fail(path, "must be a jq expression (a string)")
    try:
        jq_compile_check(value)
    except JqError as exc:
        _fail(path, f"jq does not compile: {exc}")


def _jq_or_query(value, path):
    """A mapping value is a jq string, or (identifier, relations) a search query object that Port resolves."""
    if isinstance(value, dict):
        return
    _jq(value, path)


def constant_blueprint(expression):
    """The blueprint a mapping names when its jq is a string literal ('"service"'), else None."""
    try:
        value = json.loads(expression)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, str) else None


def _mappings(mappings, path, known_blueprints):
    _object(mappings, path)
    for key in ("identifier", "blueprint"):
        if key not in mappings:
            _fail(f"{path}.{key}", "is required")
    for key in MAPPING_JQ_KEYS:
        if key in mappings:
            (_jq_or_query if key == "identifier" else _jq)(mappings[key], f"{path}.{key}")
    for group in ("properties", "relations"):
        for name, value in _object(mappings.get(group, {}), f"{path}.{group}").items():
            (_jq_or_query if group == "relations" else _jq)(value, f"{path}.{group}.{name}")
    blueprint = constant_blueprint(mappings["blueprint"])
    if known_blueprints is not None and blueprint is not None and blueprint not in known_blueprints:
        _fail(f"{path}.blueprint", f"blueprint {blueprint!r} does not exist")


def _resource(resource, path, known_blueprints):
    _object(resource, path)
    kind = resource.get("kind")
    if not isinstance(kind, str) or not kind.strip():
        _fail(f"{path}.kind", "is required, a non-empty string")
    selector = _object(resource.get("selector", {"query": "true"}), f"{path}.selector")
    _jq(selector.get("query", "true"), f"{path}.selector.query")
    port = _object(resource.get("port"), f"{path}.port")
    entity = _object(port.get("entity"), f"{path}.port.entity")
    _mappings(entity.get("mappings"), f"{path}.port.entity.mappings", known_blueprints)
    if "itemsToParse" in port:
        _jq(port["itemsToParse"], f"{path}.port.itemsToParse")


def integration_config_clean(config, *, known_blueprints=None, path="config"):
    """`config` checked; `known_blueprints` (a set of identifiers) also refuses a mapping to a blueprint that
    does not exist — None skips that check (Ocean creates its default blueprints after sending its mapping)."""
    _object(config, path)
    resources = config.get("resources", [])
    if not isinstance(resources, list):
        _fail(f"{path}.resources", "must be an array")
    for index, resource in enumerate(resources):
        _resource(resource, f"{path}.resources[{index}]", known_blueprints)
    for key in SWITCHES:
        if key in config and not isinstance(config[key], bool):
            _fail(f"{path}.{key}", "must be true or false")
    if "entityDeletionThreshold" in config:
        threshold = config["entityDeletionThreshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            _fail(f"{path}.entityDeletionThreshold", "must be a number from 0 to 1")
    return config
