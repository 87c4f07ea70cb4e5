"""Server-side validation of a run's inputs against the action's `userInputs`, whatever the client.

`inputs_clean(action, raw_properties, user=...)` returns the inputs with defaults applied, or raises
ValidationFailed naming `properties.<input>`:

- an unknown key, a missing required input, or a value of the wrong type/format/enum/bounds;
- `pattern` runs on RE2 (linear time: a user-authored `(a+)+$` cannot hang the server);
- `format: user` must be the email of an active user, `format: team` the name of a team (one query each for
  all such inputs together);
- `format: entity` (alone or as the `items` of an array) must name, by identifier or `{"identifier": ...}`
  (normalised to the identifier), an entity of the input's `blueprint` that exists, that `user` may read
  and that matches the input's `dataset` rule set — one query per entity input;
- `format: yaml` must parse as YAML.

A `default` of the form `{"jqQuery": ...}` is computed by the form, not applied here.
"""
import yaml
from django.contrib.auth import get_user_model

from catalog.validation import PortalValidator, datetimes_canonical, error_message, format_checker
from portal.errors import FieldError, ValidationFailed

NON_SCHEMA_KEYS = {"title", "description", "icon", "enumColors", "default", "blueprint", "dataset", "visible", "disabled",
                   "dependsOn", "sort", "placeholder"}
CHECKED_FORMATS = {"date-time", "url", "email", "ipv4", "ipv6", "user"}  # the rest are checked below or free text


def input_json_schema(definition):
    """An input definition as plain JSON Schema; formats without a syntax check here are dropped."""
    schema = {key: value for key, value in definition.items() if key not in NON_SCHEMA_KEYS}
    if schema.get("format") not in CHECKED_FORMATS:
        schema.pop("format", None)
    if isinstance(schema.get("items"), dict):
        schema["items"] = input_json_schema(schema["items"])
    if isinstance(schema.get("properties"), dict) and schema.get("type") == "object":
        schema["properties"] = {k: input_json_schema(v) if isinstance(v, dict) else v for k, v in schema["properties"].items()}
    return schema


def _error_path(error):
    return "".join(f"[{item}]" if isinstance(item, int) else f".{item}" for item in error.absolute_path)


def input_value_errors(definition, value, *, path=""):
    """Syntax errors of one value against one input definition (no database): [FieldError], each at `path` and
    its place in the value ("" throughout when `path` is: the caller names the place)."""
    validator = PortalValidator(input_json_schema(definition), format_checker=format_checker)
    errors = [FieldError(f"{path}{_error_path(e)}" if path else "", error_message(e))
              for e in sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))]
    if not errors:
        for item_path, fmt, item in _formatted(definition, value, path):
            if fmt == "yaml":
                try:
                    yaml.safe_load(item)
                except yaml.YAMLError as exc:
                    errors.append(FieldError(item_path, f"is not valid YAML ({str(exc).splitlines()[0]})"))
    return errors


def _formatted(definition, value, path):
    """(path, format, value) of each string the definition formats: the value itself, or an array's items."""
    if definition.get("type") == "string" and isinstance(value, str) and definition.get("format"):
        return [(path, definition["format"], value)]
    items = definition.get("items")
    if definition.get("type") == "array" and isinstance(items, dict) and items.get("format") and isinstance(value, list):
        return [(f"{path}[{i}]", items["format"], item) for i, item in enumerate(value) if isinstance(item, str)]
    return []


def _entity_definition(definition):
    """(item definition, dataset, many) for entity inputs, else None."""
    if definition.get("format") == "entity":
        return definition, definition.get("dataset"), False
    items = definition.get("items")
    if definition.get("type") == "array" and isinstance(items, dict) and items.get("format") == "entity":
        return items, items.get("dataset", definition.get("dataset")), True
    return None


def _entity_identifier(value):
    if isinstance(value, dict) and isinstance(value.get("identifier"), str):
        return value["identifier"]
    return value


def _normalise_entities(definition, value):
    entity = _entity_definition(definition)
    if entity is None:
        return value
    if entity[2]:
        return [_entity_identifier(v) for v in value] if isinstance(value, list) else value
    return _entity_identifier(value)


def _check_entities(path, definition, value, *, user, blueprints):
    from catalog.models import Entity
    from catalog.selectors.entities import entities_visible_to
    from catalog.selectors.search import search_queryset

    item, dataset, many = _entity_definition(definition)
    identifiers = list(dict.fromkeys(value if many else [value]))
    if not identifiers:
        return
    blueprint = blueprints.get(item.get("blueprint"))
    if blueprint is None:
        raise ValidationFailed(f"the input's blueprint {item.get('blueprint')!r} no longer exists", path=path)
    base = Entity.objects.filter(blueprint=blueprint, identifier__in=identifiers)
    if dataset is not None:
        found = search_queryset(dataset, user=user, blueprint=blueprint, base=base, path=f"{path}.dataset")
    else:
        found = base if user is None else entities_visible_to(user, base)
    matched = set(found.values_list("identifier", flat=True))
    missing = [identifier for identifier in identifiers if identifier not in matched]
    if not missing:
        return
    at = f"{path}[{value.index(missing[0])}]" if many else path
    visible = base if user is None else entities_visible_to(user, base)
    if dataset is not None and visible.filter(identifier=missing[0]).exists():  # error path only: say which rule failed
        raise ValidationFailed(f"entity {missing[0]!r} does not match the input's dataset", path=at)
    raise ValidationFailed(f"entity {missing[0]!r} of blueprint {blueprint.identifier!r} was not found", path=at)


def _check_directory(cleaned, definitions):
    """`user` and `team` formats: one query for all users, one for all teams."""
    from catalog.models import Team

    wanted = {"user": [], "team": []}
    for key, value in cleaned.items():
        for path, fmt, item in _formatted(definitions[key], value, f"properties.{key}"):
            if fmt in wanted:
                wanted[fmt].append((path, item))
    if wanted["user"]:
        emails = {e for _, e in wanted["user"]}
        active = set(get_user_model().objects.filter(email__in=emails, is_active=True).values_list("email", flat=True))
        for path, email in wanted["user"]:
            if email not in active:
                raise ValidationFailed(f"user {email!r} does not exist", path=path)
    if wanted["team"]:
        names = {n for _, n in wanted["team"]}
        existing = set(Team.objects.filter(name__in=names).values_list("name", flat=True))
        for path, name in wanted["team"]:
            if name not in existing:
                raise ValidationFailed(f"team {name!r} does not exist", path=path)


def inputs_clean(action, raw_properties, *, user):
    """Validated inputs of a run of `action` requested by `user` (None: the system), defaults applied."""
    from catalog.models import Blueprint

    if raw_properties is None:
        raw_properties = {}
    if not isinstance(raw_properties, dict):
        raise ValidationFailed("must be an object of input values", path="properties")
    user_inputs = (action.trigger or {}).get("userInputs") or {}
    definitions = user_inputs.get("properties") or {}
    required = set(user_inputs.get("required") or [])
    for key in raw_properties:
        if key not in definitions:
            raise ValidationFailed("is not an input of this action", path=f"properties.{key}")
    cleaned = {}
    for key, definition in definitions.items():
        value = raw_properties.get(key)
        if value is None:
            default = definition.get("default")
            if default is not None and not (isinstance(default, dict) and set(default) == {"jqQuery"}):
                cleaned[key] = datetimes_canonical(definition, default)
            elif key in required:
                raise ValidationFailed("is required", path=f"properties.{key}")
            continue
        value = _normalise_entities(definition, value)
        errors = input_value_errors(definition, value, path=f"properties.{key}")
        if errors:
            raise ValidationFailed(errors=errors)
        cleaned[key] = datetimes_canonical(definition, value)
    _check_directory(cleaned, definitions)
    entity_keys = [key for key in cleaned if _entity_definition(definitions[key]) is not None]
    if entity_keys:
        names = {_entity_definition(definitions[key])[0].get("blueprint") for key in entity_keys}
        blueprints = {bp.identifier: bp for bp in Blueprint.objects.filter(identifier__in=names)}
        for key in entity_keys:
            _check_entities(f"properties.{key}", definitions[key], cleaned[key], user=user, blueprints=blueprints)
    return cleaned
