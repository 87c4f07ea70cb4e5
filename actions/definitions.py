"""Validation of action definitions (Port's action JSON plus our extensions), field by field.

`action_definition_clean(data, blueprints=..., actions=None)` returns the normalised definition or raises
ValidationFailed whose message starts with the JSON path at fault
(`trigger.userInputs.properties.branch.pattern: is not a valid regular expression ...`).

`blueprints` maps identifier → `catalog.models.Blueprint` (every blueprint the action may name; the rule
sets in `condition` and in entity-input `dataset`s are validated against them without another query).
`actions` (optional) is the set of existing action identifiers, for automation triggers on runs.

Our extension keys: `quota` (`perUser`, `perTeam`, `liveEntitiesPerUser`, `whenExceeded`), `approvalTimeout`, `runTimeout` (default PT1H), `ttl` (CREATE only) and
`notifications` (per-action Slack switches `{approvalWaiting, runEnded, ttlWarning}`, each true/false);
durations are ISO 8601 (`P1D`, `PT1H30M`, at most `P3650D`) and are returned as given.
"""
from datetime import timedelta
from urllib.parse import urlsplit

from django.utils.dateparse import parse_duration

from actions.choices import DEFAULT_RUN_TIMEOUT_SECONDS, INVOCATION_TYPES, Operation, TriggerType
from actions.models import Action
from catalog.definitions import check_enum
from catalog.property_definitions import check_pattern
from catalog.identifiers import check_key
from portal.errors import ValidationFailed
from portal.jq import JqError, jq_compile_check

INPUT_TYPES = ("string", "number", "boolean", "object", "array")
INPUT_FORMATS = ("date-time", "url", "email", "yaml", "markdown", "multi-line", "user", "team", "entity", "ipv4", "ipv6")
INPUT_KEYS = {
    "type", "format", "title", "description", "icon", "enum", "enumColors", "default", "pattern", "items", "minimum",
    "maximum", "minLength", "maxLength", "minItems", "maxItems", "blueprint", "dataset", "visible", "disabled",
    "dependsOn", "properties", "required", "sort", "placeholder",
}
EVENT_TYPES = ("ENTITY_CREATED", "ENTITY_UPDATED", "ENTITY_DELETED", "ANY_ENTITY_CHANGE", "TIMER_PROPERTY_EXPIRED",
               "RUN_CREATED", "RUN_UPDATED", "ANY_RUN_CHANGE")
RUN_EVENTS = ("RUN_CREATED", "RUN_UPDATED", "ANY_RUN_CHANGE")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
QUOTA_PERIODS = ("hour", "day", "week", "month")
# Beyond its quota a run is refused (429), or — "requireApproval" — waits for an approval (ANY) instead.
QUOTA_WHEN_EXCEEDED = ("refuse", "requireApproval")
NOTIFICATION_KEYS = ("approvalWaiting", "runEnded", "ttlWarning")
RESERVED_IDENTIFIERS = {"runs"}  # /v1/actions/runs is the runs collection
# The longest duration (timeouts, TTLs) and quota: beyond them a deadline overflows dates and the seconds
# overflow their integer columns; nobody means more.
DURATION_MAX, DURATION_MAX_ISO = timedelta(days=3650), "P3650D"
QUOTA_MAX = 1_000_000


def _fail(path, message):
    raise ValidationFailed(message, path=path)


def _object(value, path, *, required=False):
    if value is None:
        if required:
            _fail(path, "is required")
        return {}
    if not isinstance(value, dict):
        _fail(path, f"must be an object, got {type(value).__name__}")
    return value


def _string(value, path, *, required=True, maximum=None):
    if value is None or value == "":
        if required:
            _fail(path, "is required")
        return ""
    if not isinstance(value, str):
        _fail(path, f"must be a string, got {type(value).__name__}")
    if maximum is not None and len(value) > maximum:
        _fail(path, f"must be at most {maximum} characters")
    return value


def _boolean(value, path, default):
    if value is None:
        return default
    if not isinstance(value, bool):
        _fail(path, "must be true or false")
    return value


def _unknown(data, allowed, path):
    unknown = set(data) - set(allowed)
    if unknown:
        _fail(path, f"unknown keys {sorted(unknown)}")


def _jq(expression, path):
    if not isinstance(expression, str) or not expression.strip():
        _fail(path, "must be a jq expression")
    try:
        jq_compile_check(expression)
    except JqError as exc:
        _fail(path, f"does not compile: {exc.message}")


def _blueprint(identifier, blueprints, path):
    if not isinstance(identifier, str) or identifier not in blueprints:
        _fail(path, f"blueprint {identifier!r} does not exist")
    return blueprints[identifier]


def _timer_properties(blueprint):
    return [key for key, prop in blueprint.schema.get("properties", {}).items() if prop.get("format") == "timer"]


def duration_seconds(value):
    """Seconds of an ISO 8601 duration string already validated by `_duration` (None stays None)."""
    return None if value is None else int(parse_duration(value).total_seconds())


def duration_iso(seconds):
    """A compact ISO 8601 duration (`P1D`, `PT1H30M`) for a number of seconds."""
    if seconds is None:
        return None
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "") if (days or time) else "PT0S"


def _duration(value, path, *, required=False):
    if value is None:
        if required:
            _fail(path, "is required")
        return None
    try:
        parsed = parse_duration(value) if isinstance(value, str) and value.startswith("P") else None
    except OverflowError:
        _fail(path, f"must be at most {DURATION_MAX_ISO}")
    if parsed is None:
        _fail(path, f"{value!r} is not an ISO 8601 duration such as 'P1D' or 'PT1H'")
    if parsed <= timedelta(0):
        _fail(path, "must be longer than zero")
    if parsed > DURATION_MAX:
        _fail(path, f"must be at most {DURATION_MAX_ISO}")
    if parsed.microseconds:
        _fail(path, "must be a whole number of seconds")
    return value


# --- templates --------------------------------------------------------------------------------------------

def templates_check(value, path):
    """Every `{{ jq }}` in any string (keys included) of `value` must compile. Parts are split exactly as
    actions.templating renders them; the `{{ spreadValue() }}` key is a marker, not jq."""
    from actions.templating import SPREAD_KEY_RE, template_parts

    if isinstance(value, str):
        if "{{" not in value or SPREAD_KEY_RE.match(value.strip()):
            return
        for part in template_parts(value):
            if isinstance(part, str):
                continue
            expression = part[0].strip()
            if not expression:
                _fail(path, "the template {{ }} is empty")
            try:
                jq_compile_check(expression)
            except JqError as exc:
                _fail(path, f"template {{{{ {expression} }}}} does not compile: {exc.message}")
    elif isinstance(value, dict):
        for key, item in value.items():
            templates_check(key, f"{path}.{key}")
            templates_check(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            templates_check(item, f"{path}[{i}]")


def _url(value, path):
    """An http(s) URL with a host, no blanks or control characters anywhere; or a template rendered at run time
    (the rendered URL is checked by the outbound guard when it is used)."""
    url = _string(value, path)
    if "{{" in url:
        return url
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # a bad IPv6 host such as 'http://['
        valid = False
    if not valid or not url.isprintable() or any(ch.isspace() for ch in url):
        _fail(path, f"{url!r} is not an http(s) URL (or a {{{{ template }}}})")
    return url


# --- userInputs -------------------------------------------------------------------------------------------

def _matches_type(value, type_name):
    if type_name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, {"string": str, "boolean": bool, "object": dict, "array": list}[type_name])


def _jq_or_bool(value, path):
    """`visible` / `disabled` / `required`: true, false or {"jqQuery": "..."} (evaluated by the form)."""
    if isinstance(value, bool):
        return
    if isinstance(value, dict) and set(value) == {"jqQuery"}:
        _jq(value["jqQuery"], f"{path}.jqQuery")
        return
    _fail(path, 'must be true, false or {"jqQuery": "<jq>"}')


def _entity_input(definition, path, blueprints, dataset, dataset_path):
    """`format: entity` needs `blueprint`; a `dataset` (on the input, or on the array holding it) is a rule set on it."""
    blueprint = _blueprint(definition.get("blueprint"), blueprints, f"{path}.blueprint")
    if dataset is not None:
        from catalog.selectors.search import rules_validate

        rules_validate(dataset, blueprints=[blueprint], path=dataset_path)


def input_definition_check(definition, path, blueprints, *, array_dataset=None, array_path=None):
    """One `userInputs.properties.<key>` definition (or an array's `items`, with the array's `dataset`)."""
    if not isinstance(definition, dict):
        _fail(path, "must be an object")
    _unknown(definition, INPUT_KEYS, path)
    type_name = definition.get("type")
    if type_name not in INPUT_TYPES:
        _fail(f"{path}.type", f"must be one of {list(INPUT_TYPES)}, got {type_name!r}")
    fmt = definition.get("format")
    if fmt is not None:
        if type_name != "string":
            _fail(f"{path}.format", "applies to string inputs only")
        if fmt not in INPUT_FORMATS:
            _fail(f"{path}.format", f"must be one of {list(INPUT_FORMATS)}, got {fmt!r}")
    if fmt == "entity":
        if "dataset" in definition:
            _entity_input(definition, path, blueprints, definition["dataset"], f"{path}.dataset")
        else:
            _entity_input(definition, path, blueprints, array_dataset, f"{array_path}.dataset")
    else:
        if "blueprint" in definition:
            _fail(f"{path}.blueprint", "applies to inputs of format entity only")
        if "dataset" in definition and not (type_name == "array" and (definition.get("items") or {}).get("format") == "entity"):
            _fail(f"{path}.dataset", "applies to entity inputs only")
    for key in ("title", "description", "icon", "placeholder"):
        if key in definition and not isinstance(definition[key], str):
            _fail(f"{path}.{key}", "must be a string")
    for key in ("visible", "disabled"):
        if key in definition:
            _jq_or_bool(definition[key], f"{path}.{key}")
    check_enum(definition, type_name, path, allow_null=False)
    if "pattern" in definition:
        if type_name != "string":
            _fail(f"{path}.pattern", "applies to string inputs only")
        check_pattern(definition["pattern"], f"{path}.pattern")
    for bound in ("minimum", "maximum"):
        if bound in definition and (type_name != "number" or not _matches_type(definition[bound], "number")):
            _fail(f"{path}.{bound}", "must be a number on a number input")
    for bound in ("minLength", "maxLength", "minItems", "maxItems"):
        value = definition.get(bound)
        if bound in definition and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            _fail(f"{path}.{bound}", "must be a non-negative integer")
    for low, high in (("minimum", "maximum"), ("minLength", "maxLength"), ("minItems", "maxItems")):
        if low in definition and high in definition and definition[low] > definition[high]:
            _fail(f"{path}.{low}", f"is greater than {high}")
    if type_name == "array":
        items = definition.get("items")
        if items is not None:
            input_definition_check(items, f"{path}.items", blueprints, array_dataset=definition.get("dataset"), array_path=path)
    elif "items" in definition:
        _fail(f"{path}.items", "applies to array inputs only")
    if "default" in definition:
        default = definition["default"]
        if isinstance(default, dict) and set(default) == {"jqQuery"}:
            _jq(default["jqQuery"], f"{path}.default.jqQuery")  # computed by the form; not applied server-side
        else:
            from actions.inputs import input_value_errors

            errors = input_value_errors(definition, default)
            if errors:
                _fail(f"{path}.default", errors[0])


def _user_inputs(data, path, blueprints):
    data = _object(data, path)
    _unknown(data, {"properties", "required", "order", "steps", "titles"}, path)
    properties = _object(data.get("properties"), f"{path}.properties")
    for key, definition in properties.items():
        check_key(key, f"{path}.properties.{key}")
        input_definition_check(definition, f"{path}.properties.{key}", blueprints)
    clean = {"properties": properties}
    for key in ("required", "order"):
        names = data.get(key, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            _fail(f"{path}.{key}", "must be a list of input identifiers")
        for i, name in enumerate(names):
            if name not in properties:
                _fail(f"{path}.{key}[{i}]", f"{name!r} is not an input of this action")
        if len(set(names)) != len(names):
            _fail(f"{path}.{key}", "names an input more than once")
        clean[key] = list(names)
    for key in ("steps", "titles"):
        if key in data:
            clean[key] = data[key]
    return clean


# --- triggers ---------------------------------------------------------------------------------------------

def _self_service_trigger(trigger, blueprints):
    _unknown(trigger, {"type", "operation", "blueprintIdentifier", "userInputs", "condition", "actionCardButtonText",
                       "executeActionButtonText"}, "trigger")
    operation = trigger.get("operation")
    if operation not in Operation.values:
        _fail("trigger.operation", f"must be one of {list(Operation.values)}, got {operation!r}")
    blueprint = _blueprint(trigger.get("blueprintIdentifier"), blueprints, "trigger.blueprintIdentifier")
    clean = {"type": TriggerType.SELF_SERVICE.value, "operation": operation, "blueprintIdentifier": blueprint.identifier,
             "userInputs": _user_inputs(trigger.get("userInputs"), "trigger.userInputs", blueprints)}
    condition = trigger.get("condition")
    if condition is not None:
        if operation == Operation.CREATE:
            _fail("trigger.condition", "applies to DAY-2 and DELETE actions only (there is no entity to match yet)")
        from catalog.selectors.search import rules_validate

        rules_validate(condition, blueprints=[blueprint], path="trigger.condition")
        clean["condition"] = condition
    for key in ("actionCardButtonText", "executeActionButtonText"):
        if key in trigger:
            clean[key] = _string(trigger[key], f"trigger.{key}")
    return clean


def _automation_condition(condition):
    condition = _object(condition, "trigger.condition")
    _unknown(condition, {"type", "expressions", "combinator"}, "trigger.condition")
    if condition.get("type") != "JQ":
        _fail("trigger.condition.type", f'must be "JQ", got {condition.get("type")!r}')
    expressions = condition.get("expressions")
    if not isinstance(expressions, list) or not expressions:
        _fail("trigger.condition.expressions", "must be a non-empty list of jq expressions")
    for i, expression in enumerate(expressions):
        _jq(expression, f"trigger.condition.expressions[{i}]")
    combinator = condition.get("combinator", "and")
    if combinator not in ("and", "or"):
        _fail("trigger.condition.combinator", f'must be "and" or "or", got {combinator!r}')
    return {"type": "JQ", "expressions": list(expressions), "combinator": combinator}


def _automation_trigger(trigger, blueprints, actions):
    _unknown(trigger, {"type", "event", "condition"}, "trigger")
    event = _object(trigger.get("event"), "trigger.event", required=True)
    _unknown(event, {"type", "blueprintIdentifier", "propertyIdentifier", "actionIdentifier"}, "trigger.event")
    event_type = event.get("type")
    if event_type not in EVENT_TYPES:
        _fail("trigger.event.type", f"must be one of {list(EVENT_TYPES)}, got {event_type!r}")
    clean_event = {"type": event_type}
    if event_type in RUN_EVENTS:
        identifier = _string(event.get("actionIdentifier"), "trigger.event.actionIdentifier")
        if actions is not None and identifier not in actions:
            _fail("trigger.event.actionIdentifier", f"action {identifier!r} does not exist")
        clean_event["actionIdentifier"] = identifier
    else:
        blueprint = _blueprint(event.get("blueprintIdentifier"), blueprints, "trigger.event.blueprintIdentifier")
        clean_event["blueprintIdentifier"] = blueprint.identifier
        if event_type == "TIMER_PROPERTY_EXPIRED":
            prop = event.get("propertyIdentifier")
            timers = _timer_properties(blueprint)
            if prop not in timers:
                _fail("trigger.event.propertyIdentifier",
                      f"{prop!r} is not a timer property of blueprint {blueprint.identifier!r} (timers: {timers})")
            clean_event["propertyIdentifier"] = prop
        elif "propertyIdentifier" in event:
            _fail("trigger.event.propertyIdentifier", "applies to TIMER_PROPERTY_EXPIRED events only")
    clean = {"type": TriggerType.AUTOMATION.value, "event": clean_event}
    if trigger.get("condition") is not None:
        clean["condition"] = _automation_condition(trigger["condition"])
    return clean


# --- invocation methods -----------------------------------------------------------------------------------

def _string_map(value, path):
    value = _object(value, path)
    for key, item in value.items():
        if not isinstance(item, str):
            _fail(f"{path}.{key}", "must be a string")
    return value


def _webhook(method):
    _unknown(method, {"type", "url", "agent", "synchronized", "method", "headers", "body"}, "invocationMethod")
    http_method = method.get("method", "POST")
    if http_method not in HTTP_METHODS:
        _fail("invocationMethod.method", f"must be one of {list(HTTP_METHODS)}, got {http_method!r}")
    clean = {
        "type": "WEBHOOK",
        "url": _url(method.get("url"), "invocationMethod.url"),
        "agent": _boolean(method.get("agent"), "invocationMethod.agent", False),
        "synchronized": _boolean(method.get("synchronized"), "invocationMethod.synchronized", False),
        "method": http_method,
    }
    if method.get("headers") is not None:
        clean["headers"] = _string_map(method["headers"], "invocationMethod.headers")
    if "body" in method:
        clean["body"] = method["body"]
    return clean


def _github(method):
    _unknown(method, {"type", "org", "repo", "workflow", "workflowInputs", "reportWorkflowStatus"}, "invocationMethod")
    clean = {"type": "GITHUB", **{key: _string(method.get(key), f"invocationMethod.{key}") for key in ("org", "repo", "workflow")}}
    if method.get("workflowInputs") is not None:
        clean["workflowInputs"] = _object(method["workflowInputs"], "invocationMethod.workflowInputs")
    clean["reportWorkflowStatus"] = _boolean(method.get("reportWorkflowStatus"), "invocationMethod.reportWorkflowStatus", True)
    return clean


def _gitlab(method):
    _unknown(method, {"type", "projectName", "groupName", "defaultRef", "pipelineVariables"}, "invocationMethod")
    clean = {"type": "GITLAB", **{key: _string(method.get(key), f"invocationMethod.{key}") for key in ("projectName", "groupName")}}
    if method.get("defaultRef") is not None:
        clean["defaultRef"] = _string(method["defaultRef"], "invocationMethod.defaultRef")
    if method.get("pipelineVariables") is not None:
        clean["pipelineVariables"] = _object(method["pipelineVariables"], "invocationMethod.pipelineVariables")
    return clean


def _upsert_entity(method, blueprints):
    _unknown(method, {"type", "blueprintIdentifier", "mapping"}, "invocationMethod")
    blueprint = _blueprint(method.get("blueprintIdentifier"), blueprints, "invocationMethod.blueprintIdentifier")
    mapping = _object(method.get("mapping"), "invocationMethod.mapping", required=True)
    _unknown(mapping, {"identifier", "title", "team", "icon", "properties", "relations"}, "invocationMethod.mapping")
    _string(mapping.get("identifier"), "invocationMethod.mapping.identifier")
    for key in ("properties", "relations"):
        if key in mapping and not isinstance(mapping[key], dict):
            _fail(f"invocationMethod.mapping.{key}", "must be an object")
    return {"type": "UPSERT_ENTITY", "blueprintIdentifier": blueprint.identifier, "mapping": mapping}


def _slack(method):
    _unknown(method, {"type", "channel", "text"}, "invocationMethod")
    return {"type": "SLACK", "channel": _string(method.get("channel"), "invocationMethod.channel"),
            "text": _string(method.get("text"), "invocationMethod.text")}


def _extend_ttl(method):
    """Ours: extend the run's entity's TTL by its policy's step (the built-in "Extend TTL" DAY-2 action)."""
    _unknown(method, {"type"}, "invocationMethod")
    return {"type": "EXTEND_TTL"}


def _invocation_method(method, blueprints):
    method = _object(method, "invocationMethod", required=True)
    kind = method.get("type")
    if kind not in INVOCATION_TYPES:
        _fail("invocationMethod.type", f"must be one of {list(INVOCATION_TYPES)}, got {kind!r}")
    if kind == "WEBHOOK":
        clean = _webhook(method)
    elif kind == "GITHUB":
        clean = _github(method)
    elif kind == "GITLAB":
        clean = _gitlab(method)
    elif kind == "UPSERT_ENTITY":
        clean = _upsert_entity(method, blueprints)
    elif kind == "EXTEND_TTL":
        clean = _extend_ttl(method)
    else:
        clean = _slack(method)
    for key, value in clean.items():
        if key != "type":
            templates_check(value, f"invocationMethod.{key}")
    return clean


# --- approval, notification, extensions -------------------------------------------------------------------

def _required_approval(value):
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, dict) and set(value) == {"type"} and value["type"] in ("ANY", "ALL"):
        return {"type": value["type"]}
    _fail("requiredApproval", 'must be false, true, {"type": "ANY"} or {"type": "ALL"}')


def _approval_notification(value):
    if value is None:
        return None
    value = _object(value, "approvalNotification")
    kind = value.get("type")
    if kind == "email":
        _unknown(value, {"type"}, "approvalNotification")
        return {"type": "email"}
    if kind == "webhook":
        _unknown(value, {"type", "url", "format"}, "approvalNotification")
        url = _url(value.get("url"), "approvalNotification.url")
        templates_check(url, "approvalNotification.url")
        if value.get("format", "json") != "json":
            _fail("approvalNotification.format", f'must be "json", got {value.get("format")!r}')
        return {"type": "webhook", "url": url, "format": "json"}
    _fail("approvalNotification.type", f'must be "webhook" or "email", got {kind!r}')


def _positive_int(value, path):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        _fail(path, "must be a positive integer")
    if value > QUOTA_MAX:
        _fail(path, f"must be at most {QUOTA_MAX}")
    return value


def _quota(value, trigger):
    if value is None:
        return None
    value = _object(value, "quota")
    _unknown(value, {"perUser", "perTeam", "liveEntitiesPerUser", "whenExceeded"}, "quota")
    clean = {}
    for key in ("perUser", "perTeam"):
        if value.get(key) is None:
            continue
        limit = _object(value[key], f"quota.{key}")
        _unknown(limit, {"limit", "period"}, f"quota.{key}")
        if limit.get("period") not in QUOTA_PERIODS:
            _fail(f"quota.{key}.period", f"must be one of {list(QUOTA_PERIODS)}, got {limit.get('period')!r}")
        clean[key] = {"limit": _positive_int(limit.get("limit"), f"quota.{key}.limit"), "period": limit["period"]}
    if value.get("liveEntitiesPerUser") is not None:
        if trigger.get("operation") != Operation.CREATE:
            _fail("quota.liveEntitiesPerUser", "applies to CREATE actions only")
        clean["liveEntitiesPerUser"] = _positive_int(value["liveEntitiesPerUser"], "quota.liveEntitiesPerUser")
    when_exceeded = value.get("whenExceeded", QUOTA_WHEN_EXCEEDED[0])
    if when_exceeded not in QUOTA_WHEN_EXCEEDED:
        _fail("quota.whenExceeded", f"must be one of {list(QUOTA_WHEN_EXCEEDED)}, got {when_exceeded!r}")
    if clean and when_exceeded != QUOTA_WHEN_EXCEEDED[0]:
        clean["whenExceeded"] = when_exceeded
    return clean or None


def _ttl(value, trigger, blueprints):
    if value is None:
        return None
    if trigger.get("operation") != Operation.CREATE:
        _fail("ttl", "applies to CREATE actions only")
    value = _object(value, "ttl")
    _unknown(value, {"property", "default", "maximum", "extendBy"}, "ttl")
    blueprint = blueprints[trigger["blueprintIdentifier"]]
    timers = _timer_properties(blueprint)
    if value.get("property") not in timers:
        _fail("ttl.property", f"{value.get('property')!r} is not a timer property of blueprint "
                              f"{blueprint.identifier!r} (timers: {timers})")
    clean = {"property": value["property"], "default": _duration(value.get("default"), "ttl.default", required=True)}
    for key in ("maximum", "extendBy"):
        if value.get(key) is not None:
            clean[key] = _duration(value[key], f"ttl.{key}")
    if "maximum" in clean:
        maximum = parse_duration(clean["maximum"])
        for key in ("default", "extendBy"):
            if key in clean and parse_duration(clean[key]) > maximum:
                _fail(f"ttl.{key}", f"{clean[key]} is longer than the maximum {clean['maximum']}")
    return clean


def _notifications(value):
    """Per-action Slack notification switches; a key left out follows the portal-wide setting (on)."""
    if value is None:
        return None
    value = _object(value, "notifications")
    _unknown(value, NOTIFICATION_KEYS, "notifications")
    return {key: _boolean(value[key], f"notifications.{key}", True) for key in NOTIFICATION_KEYS if key in value} or None


# --- the whole definition ---------------------------------------------------------------------------------

TOP_KEYS = {
    "identifier", "title", "icon", "description", "trigger", "invocationMethod", "requiredApproval",
    "approvalNotification", "publish", "quota", "approvalTimeout", "runTimeout", "ttl", "notifications",
    # returned by GET; accepted back on PUT and ignored
    "createdBy", "updatedBy", "createdAt", "updatedAt",
}


def action_definition_clean(data, *, blueprints, actions=None):
    """Validate a Port action JSON (plus our extensions); see the module docstring."""
    if not isinstance(data, dict):
        raise ValidationFailed("body: must be a JSON object")
    _unknown(data, TOP_KEYS, "body")
    identifier = data.get("identifier")
    check_key(identifier, "identifier")
    if identifier in RESERVED_IDENTIFIERS:
        _fail("identifier", f"{identifier!r} is reserved")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        _fail("title", "is required")
    _string(title, "title", maximum=Action._meta.get_field("title").max_length)
    trigger = _object(data.get("trigger"), "trigger", required=True)
    kind = trigger.get("type")
    if kind == TriggerType.SELF_SERVICE:
        clean_trigger = _self_service_trigger(trigger, blueprints)
    elif kind == TriggerType.AUTOMATION:
        clean_trigger = _automation_trigger(trigger, blueprints, actions)
    else:
        _fail("trigger.type", f'must be "self-service" or "automation", got {kind!r}')
    clean = {
        "identifier": identifier,
        "title": title,
        "icon": _string(data.get("icon"), "icon", required=False, maximum=Action._meta.get_field("icon").max_length),
        "description": _string(data.get("description"), "description", required=False),
        "trigger": clean_trigger,
        "invocationMethod": _invocation_method(data.get("invocationMethod"), blueprints),
        "requiredApproval": _required_approval(data.get("requiredApproval")),
        "approvalNotification": _approval_notification(data.get("approvalNotification")),
        "publish": _boolean(data.get("publish"), "publish", True),
        "quota": _quota(data.get("quota"), clean_trigger),
        "approvalTimeout": _duration(data.get("approvalTimeout"), "approvalTimeout"),
        "runTimeout": _duration(data.get("runTimeout"), "runTimeout") or duration_iso(DEFAULT_RUN_TIMEOUT_SECONDS),
        "ttl": _ttl(data.get("ttl"), clean_trigger, blueprints),
        "notifications": _notifications(data.get("notifications")),
    }
    if kind == TriggerType.AUTOMATION:
        for key in ("quota", "ttl"):
            if clean[key] is not None:
                _fail(key, "applies to self-service actions only")
        if clean["requiredApproval"] is not False:
            _fail("requiredApproval", "automations run without approval")
    return clean
