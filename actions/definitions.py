"""Action definitions (Port's action JSON plus our extensions): their shape is checked against
actions/schemas/action.json (catalog.shapes), their meaning here — blueprints, actions and timer properties
that exist, rule sets valid on their blueprint, jq and templates that compile, URLs, durations, defaults the
input accepts — shape errors first.

`action_definition_clean(data, blueprints=..., actions=None)` returns the normalised definition or raises
ValidationFailed naming the JSON path at fault
(`trigger.userInputs.properties.branch.pattern: is not a valid regular expression ...`).

`blueprints` maps identifier → `catalog.models.Blueprint` (every blueprint the action may name; the rule
sets in `condition` and in entity-input `dataset`s are validated against them without another query).
`actions` (optional) is the set of existing action identifiers, for automation triggers on runs.

Our extension keys: `quota` (`perUser`, `perTeam`, `liveEntitiesPerUser`, `whenExceeded`), `approvalTimeout`,
`runTimeout` (default PT1H), `ttl` (CREATE only) and `notifications` (per-action Slack switches
`{approvalWaiting, runEnded, ttlWarning}`, each true/false); durations are ISO 8601 (`P1D`, `PT1H30M`, at most
`P3650D`) and are returned as given.
"""
from datetime import timedelta
from urllib.parse import urlsplit

from django.utils.dateparse import parse_duration

from actions.choices import DEFAULT_RUN_TIMEOUT_SECONDS, TriggerType
from catalog.property_definitions import bounds_check, check_pattern, enum_colours_check
from catalog.shapes import schema_validator, shape_check
from portal.errors import ValidationFailed
from portal.jq import JqError, jq_compile_check

RESERVED_IDENTIFIERS = {"runs"}  # /v1/actions/runs is the runs collection
RUN_EVENTS = ("RUN_CREATED", "RUN_UPDATED", "ANY_RUN_CHANGE")
# The longest duration (timeouts, TTLs): beyond it a deadline overflows dates and the seconds overflow their
# integer columns; nobody means more. (The largest quota is the schema's.)
DURATION_MAX, DURATION_MAX_ISO = timedelta(days=3650), "P3650D"
QUOTA_REFUSE = "refuse"  # beyond its quota a run is refused (429), or — "requireApproval" — waits for an approval


SHAPE = schema_validator("actions", "action")
TOP_KEYS = frozenset(SHAPE.schema["properties"])  # what an action definition may hold (the OpenAPI request body)
NOTIFICATION_KEYS = tuple(SHAPE.schema["properties"]["notifications"]["properties"])


def _fail(path, message):
    raise ValidationFailed(message, path=path)


def _jq(expression, path):
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


def _duration(value, path):
    """An ISO 8601 duration (a string or None: its shape checked), returned as given."""
    if value is None:
        return None
    try:
        parsed = parse_duration(value) if value.startswith("P") else None
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
    url = value
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

def _entity_input(definition, path, blueprints, dataset, dataset_path):
    """`format: entity` needs `blueprint`; a `dataset` (on the input, or on the array holding it) is a rule set on it."""
    blueprint = _blueprint(definition.get("blueprint"), blueprints, f"{path}.blueprint")
    if dataset is not None:
        from catalog.selectors.search import rules_validate

        rules_validate(dataset, blueprints=[blueprint], path=dataset_path)


def input_definition_check(definition, path, blueprints, *, array_dataset=None, array_path=None):
    """One `userInputs.properties.<key>` definition of the right shape (or an array's `items`, with the
    array's `dataset`)."""
    if definition.get("format") == "entity":
        if "dataset" in definition:
            _entity_input(definition, path, blueprints, definition["dataset"], f"{path}.dataset")
        else:
            _entity_input(definition, path, blueprints, array_dataset, f"{array_path}.dataset")
    for key in ("visible", "disabled"):
        if isinstance(definition.get(key), dict):
            _jq(definition[key]["jqQuery"], f"{path}.{key}.jqQuery")
    enum_colours_check(definition, path)
    if "pattern" in definition:
        check_pattern(definition["pattern"], f"{path}.pattern")
    bounds_check(definition, path)
    if definition.get("items") is not None:
        input_definition_check(definition["items"], f"{path}.items", blueprints, array_dataset=definition.get("dataset"),
                               array_path=path)
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
    data = data or {}
    properties = data.get("properties") or {}
    for key, definition in properties.items():
        input_definition_check(definition, f"{path}.properties.{key}", blueprints)
    clean = {"properties": properties}
    for key in ("required", "order"):
        names = data.get(key, [])
        for i, name in enumerate(names):
            if name not in properties:
                _fail(f"{path}.{key}[{i}]", f"{name!r} is not an input of this action")
        clean[key] = list(names)
    for key in ("steps", "titles"):
        if key in data:
            clean[key] = data[key]
    return clean


# --- triggers ---------------------------------------------------------------------------------------------

def _self_service_trigger(trigger, blueprints):
    operation = trigger["operation"]
    blueprint = _blueprint(trigger.get("blueprintIdentifier"), blueprints, "trigger.blueprintIdentifier")
    clean = {"type": TriggerType.SELF_SERVICE.value, "operation": operation, "blueprintIdentifier": blueprint.identifier,
             "userInputs": _user_inputs(trigger.get("userInputs"), "trigger.userInputs", blueprints)}
    condition = trigger.get("condition")
    if condition is not None:
        from catalog.selectors.search import rules_validate

        rules_validate(condition, blueprints=[blueprint], path="trigger.condition")
        clean["condition"] = condition
    for key in ("actionCardButtonText", "executeActionButtonText"):
        if key in trigger:
            clean[key] = trigger[key]
    return clean


def _automation_condition(condition):
    for i, expression in enumerate(condition["expressions"]):
        _jq(expression, f"trigger.condition.expressions[{i}]")
    return {"type": "JQ", "expressions": list(condition["expressions"]), "combinator": condition.get("combinator", "and")}


def _automation_trigger(trigger, blueprints, actions):
    event = trigger["event"]
    event_type = event["type"]
    clean_event = {"type": event_type}
    if event_type in RUN_EVENTS:
        identifier = event["actionIdentifier"]
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
    clean = {"type": TriggerType.AUTOMATION.value, "event": clean_event}
    if trigger.get("condition") is not None:
        clean["condition"] = _automation_condition(trigger["condition"])
    return clean


# --- invocation methods -----------------------------------------------------------------------------------

def _invocation_method(method, blueprints):
    kind = method["type"]
    if kind == "WEBHOOK":
        clean = {"type": kind, "url": _url(method["url"], "invocationMethod.url"), "agent": method.get("agent") or False,
                 "synchronized": method.get("synchronized") or False, "method": method.get("method", "POST")}
        for key in ("headers", "body"):
            if method.get(key) is not None or key == "body" and key in method:
                clean[key] = method[key]
    elif kind == "GITHUB":
        clean = {"type": kind, **{key: method[key] for key in ("org", "repo", "workflow")}}
        if method.get("workflowInputs") is not None:
            clean["workflowInputs"] = method["workflowInputs"]
        status = method.get("reportWorkflowStatus")
        clean["reportWorkflowStatus"] = True if status is None else status
    elif kind == "GITLAB":
        clean = {"type": kind, **{key: method[key] for key in ("projectName", "groupName")},
                 **{key: method[key] for key in ("defaultRef", "pipelineVariables") if method.get(key) is not None}}
    elif kind == "UPSERT_ENTITY":
        blueprint = _blueprint(method.get("blueprintIdentifier"), blueprints, "invocationMethod.blueprintIdentifier")
        clean = {"type": kind, "blueprintIdentifier": blueprint.identifier, "mapping": method["mapping"]}
    elif kind == "SLACK":
        clean = {"type": kind, "channel": method["channel"], "text": method["text"]}
    elif kind == "KAFKA":
        clean = {"type": kind, **{key: method[key] for key in ("topic", "body") if method.get(key) is not None}}
    else:  # EXTEND_TTL, ours: extend the run's entity's TTL by its policy's step (the built-in "Extend TTL" action)
        clean = {"type": kind}
    for key, value in clean.items():
        if key != "type":
            templates_check(value, f"invocationMethod.{key}")
    return clean


# --- approval, notification, extensions -------------------------------------------------------------------

def _required_approval(value):
    return value if isinstance(value, dict) else bool(value)


def _approval_notification(value):
    if value is None:
        return None
    if value["type"] == "email":
        return {"type": "email"}
    url = _url(value["url"], "approvalNotification.url")
    templates_check(url, "approvalNotification.url")
    return {"type": "webhook", "url": url, "format": "json"}


def _quota(value):
    if value is None:
        return None
    clean = {key: {"limit": value[key]["limit"], "period": value[key]["period"]}
             for key in ("perUser", "perTeam") if value.get(key) is not None}
    if value.get("liveEntitiesPerUser") is not None:
        clean["liveEntitiesPerUser"] = value["liveEntitiesPerUser"]
    when_exceeded = value.get("whenExceeded", QUOTA_REFUSE)
    if clean and when_exceeded != QUOTA_REFUSE:
        clean["whenExceeded"] = when_exceeded
    return clean or None


def _ttl(value, trigger, blueprints):
    if value is None:
        return None
    blueprint = blueprints[trigger["blueprintIdentifier"]]
    timers = _timer_properties(blueprint)
    if value.get("property") not in timers:
        _fail("ttl.property", f"{value.get('property')!r} is not a timer property of blueprint "
                              f"{blueprint.identifier!r} (timers: {timers})")
    clean = {"property": value["property"], "default": _duration(value["default"], "ttl.default")}
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
    return {key: True if value[key] is None else value[key] for key in NOTIFICATION_KEYS if key in value} or None


# --- the whole definition ---------------------------------------------------------------------------------

def action_definition_clean(data, *, blueprints, actions=None):
    """Validate a Port action JSON (plus our extensions); see the module docstring."""
    shape_check(data, SHAPE)
    identifier = data["identifier"]
    if identifier in RESERVED_IDENTIFIERS:
        _fail("identifier", f"{identifier!r} is reserved")
    trigger = data["trigger"]
    if trigger["type"] == TriggerType.SELF_SERVICE:
        clean_trigger = _self_service_trigger(trigger, blueprints)
    else:
        clean_trigger = _automation_trigger(trigger, blueprints, actions)
    return {
        "identifier": identifier,
        "title": data["title"],
        "icon": data.get("icon") or "",
        "description": data.get("description") or "",
        "trigger": clean_trigger,
        "invocationMethod": _invocation_method(data["invocationMethod"], blueprints),
        "requiredApproval": _required_approval(data.get("requiredApproval")),
        "approvalNotification": _approval_notification(data.get("approvalNotification")),
        "publish": True if data.get("publish") is None else data["publish"],
        "quota": _quota(data.get("quota")),
        "approvalTimeout": _duration(data.get("approvalTimeout"), "approvalTimeout"),
        "runTimeout": _duration(data.get("runTimeout"), "runTimeout") or duration_iso(DEFAULT_RUN_TIMEOUT_SECONDS),
        "ttl": _ttl(data.get("ttl"), clean_trigger, blueprints),
        "notifications": _notifications(data.get("notifications")),
    }
