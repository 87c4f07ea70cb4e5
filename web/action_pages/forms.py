"""An action's `trigger.userInputs` as an HTML form: the fields to render, and the POSTed text read back into
the typed `properties` that `run_request` validates.

The browser checks what HTML attributes can say (required, pattern, min/max, minlength/maxlength, url, email);
everything is checked again by the server through `run_request` → `actions.inputs.inputs_clean`, whose errors
at `properties.<key>...` land at the field of that key (`attach_run_errors`). What only this module can get
wrong — text that is not a number, not JSON, not a date-time — is reported here first, as an error at the same
path.

Field names are the error paths (`properties.branch`), so an error finds its field by its path's keys.
Date-times are entered in UTC (the `datetime-local` widget has no zone) and sent as `...Z`.
"""
import json
import re
from dataclasses import dataclass, field as dataclass_field

from django.forms.utils import flatatt

from actions.choices import Operation
from catalog.selectors.entity_choices import entity_choices_visible_to, entity_titles_visible_to
from catalog.selectors.teams import team_names
from catalog.selectors.users import active_user_names
from portal import strictjson
from portal.datetimes import NotAnInstant, instant_of, instant_parse, instant_text
from portal.errors import FieldError, PortalError

OPTIONS_LIMIT = 200  # entity options per picker; a text filter narrows beyond that
DIRECTORY_LIMIT = 500  # users/teams in a select; beyond that the field takes typed text
COLOUR_RE = re.compile(r"[A-Za-z]+")
IPV4_PATTERN = r"((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"


@dataclass
class Option:
    value: str
    label: str
    colour: str = ""
    selected: bool = False


@dataclass
class InputField:
    key: str
    definition: dict
    kind: str  # text email url number datetime textarea code json checkbox select radios checkboxes multiselect lines
    label: str
    required: bool = False
    disabled: bool = False
    help: str = ""
    placeholder: str = ""
    attrs: dict = dataclass_field(default_factory=dict)  # HTML validation attributes of the control
    value: str = ""  # the text shown in a single control
    options: list = dataclass_field(default_factory=list)
    error: str = ""
    options_note: str = ""  # e.g. "Showing the first 200 of 1,234 — filter to narrow"
    filter_text: str = ""
    entity_picker: bool = False  # options come from the catalog; a text filter can fetch more

    @property
    def has_default(self):
        return "default" in self.definition

    @property
    def name(self):
        return self.key if self.key == "entity" else f"properties.{self.key}"

    @property
    def html_id(self):
        return "input-" + self.key if self.key == "entity" else "input-p-" + self.key

    @property
    def describedby(self):
        ids = []
        if self.help or self.options_note:
            ids.append(self.html_id + "-help")
        if self.error:
            ids.append(self.html_id + "-error")
        return " ".join(ids)

    @property
    def attrs_html(self):
        """The control's attributes (escaped), required/disabled/aria included."""
        attrs = {"id": self.html_id, "name": self.name, **self.attrs}
        if self.placeholder:
            attrs["placeholder"] = self.placeholder
        if self.required and self.kind not in ("checkbox", "checkboxes", "multiselect"):
            attrs["required"] = True
        if self.disabled:
            attrs["disabled"] = True
        if self.describedby:
            attrs["aria-describedby"] = self.describedby
        if self.error:
            attrs["aria-invalid"] = "true"
        return flatatt(attrs)

    @property
    def group_attrs_html(self):
        """Attributes of each radio/checkbox of a group (named, never with the group's id)."""
        attrs = {"name": self.name}
        if self.required and self.kind == "radios":
            attrs["required"] = True
        if self.disabled:
            attrs["disabled"] = True
        return flatatt(attrs)


@dataclass
class InputGroup:
    title: str
    fields: list


# --- building the fields -----------------------------------------------------------------------------------

def _kind(definition):
    type_name, fmt = definition.get("type"), definition.get("format")
    if type_name == "boolean":
        return "checkbox"
    if type_name == "number":
        return "radios" if definition.get("enum") and definition.get("enumColors") else \
            "select" if definition.get("enum") else "number"
    if type_name == "object":
        return "json"
    if type_name == "array":
        items = definition.get("items") or {}
        if items.get("enum"):
            return "checkboxes"
        if items.get("format") in ("entity", "user", "team"):
            return "multiselect"
        return "lines"
    if definition.get("enum"):
        return "radios" if definition.get("enumColors") else "select"
    return {"entity": "select", "user": "select", "team": "select", "date-time": "datetime", "url": "url",
            "email": "email", "multi-line": "textarea", "markdown": "textarea", "yaml": "code"}.get(fmt, "text")


def _plain_bool(value, default):
    """`visible`/`disabled` apply when they are plain booleans; a jqQuery is the browser's to evaluate
    (Port's form does it) — here the field stays shown and editable, and the server decides."""
    return value if isinstance(value, bool) else default


# The browser compiles `pattern` with the `v` flag, which reserves characters inside a character class that
# JSON Schema's (ECMA-262, no flag) patterns take literally: `[a-z0-9-]` is fine there and a syntax error here.
V_MODE_CLASS_RESERVED = set("()[]{}/|-&!#%,:;<=>@`~.*+?$^")
CLASS_ESCAPES = {"\\d", "\\D", "\\s", "\\S", "\\w", "\\W", "\\p", "\\P"}


def _html_pattern(pattern):
    """JSON Schema patterns search; the HTML attribute must match the whole value. A pattern the browser still
    cannot compile is ignored by it (the server checks anyway)."""
    pattern = _v_mode_classes(pattern)
    if pattern.startswith("^") and pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern
    return r"[\s\S]*(?:" + pattern + r")[\s\S]*"


def _v_mode_classes(pattern):
    """The same pattern with every literal character the `v` flag reserves inside a class escaped (a `-` that
    makes a range stays); outside classes nothing changes."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == "\\":
            out.append(pattern[i:i + 2])
            i += 2
        elif pattern[i] == "[":
            i, body = _class_body(pattern, i + 1)
            out.append("[" + body + "]")
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


def _class_body(pattern, i):
    """(the index after the class's closing `]`, its body escaped for the `v` flag); the class opened before i."""
    negated = pattern.startswith("^", i)
    i += negated
    tokens = []
    while i < len(pattern) and pattern[i] != "]":
        size = 2 if pattern[i] == "\\" else 1
        tokens.append(pattern[i:i + size])
        i += size
    body, k = ["^"] if negated else [], 0

    def literal(token):
        return "\\" + token if token in V_MODE_CLASS_RESERVED else token

    while k < len(tokens):
        is_range = (k + 2 < len(tokens) and tokens[k + 1] == "-"
                    and tokens[k] not in CLASS_ESCAPES and tokens[k + 2] not in CLASS_ESCAPES)
        if is_range:
            body.append(literal(tokens[k]) + "-" + literal(tokens[k + 2]))
            k += 3
        else:
            body.append(literal(tokens[k]))
            k += 1
    return i + 1, "".join(body)


def _text(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=2)
    return str(value)


def _datetime_local(value):
    """An ISO date-time as the value of a datetime-local control, in UTC."""
    if not isinstance(value, str):
        return ""
    moment = instant_of(value)
    return moment.strftime("%Y-%m-%dT%H:%M") if moment is not None else value


def _entity_identifier(value):
    return value.get("identifier", "") if isinstance(value, dict) else value


def _initial(definition, kind):
    """(text, selected values) of the definition's default, as the form shows it."""
    default = definition.get("default")
    if isinstance(default, dict) and set(default) == {"jqQuery"}:
        return "", []
    if default is None:
        return "", []
    if kind == "checkbox":
        return ("on" if default is True else ""), []
    if kind == "datetime":
        return _datetime_local(default), []
    if kind in ("checkboxes", "multiselect"):
        return "", [_text(_entity_identifier(v)) for v in default] if isinstance(default, list) else []
    if kind == "lines":
        if isinstance(default, list):
            return "\n".join(json.dumps(v) if isinstance(v, (dict, list)) else _text(v) for v in default), []
        return "", []
    if definition.get("format") == "entity":
        return _text(_entity_identifier(default)), []
    return _text(default), []


def _submitted(definition, kind, name, data):
    """(text, selected values) as the user sent them, to show them again."""
    if kind == "checkbox":
        return ("on" if name in data else ""), []
    if kind in ("checkboxes", "multiselect"):
        return "", data.getlist(name)
    return data.get(name, ""), [data.get(name, "")]


def _help(definition, kind):
    parts = [definition.get("description", "")]
    items = definition.get("items") or {}
    if kind == "datetime":
        parts.append("Date and time in UTC.")
    elif kind == "lines":
        item_type = items.get("type", "string")
        parts.append("One value per line" + (" (JSON objects)" if item_type == "object" else
                                             " (numbers)" if item_type == "number" else "") + ".")
    elif kind == "json":
        parts.append("A JSON object.")
    elif kind == "multiselect":
        parts.append("Hold Ctrl (⌘ on a Mac) to choose several.")
    elif kind == "code":
        parts.append("YAML.")
    elif definition.get("format") == "markdown":
        parts.append("Markdown.")
    low, high = definition.get("minItems"), definition.get("maxItems")
    if low is not None or high is not None:
        parts.append(f"Choose {'at least ' + str(low) if low is not None else ''}"
                     f"{' and ' if low is not None and high is not None else ''}"
                     f"{'at most ' + str(high) if high is not None else ''}.")
    if definition.get("disabled") is True:
        parts.append("Set by the action; it cannot be changed.")
    return " ".join(p for p in parts if p)


def _attrs(definition, kind):
    attrs = {}
    if kind == "number":
        attrs["type"] = "number"
        attrs["step"] = "any"
        for key, attr in (("minimum", "min"), ("maximum", "max")):
            if key in definition:
                attrs[attr] = _text(definition[key])
    elif kind in ("text", "email", "url", "textarea", "code"):
        if kind in ("text", "email", "url"):
            attrs["type"] = kind
        for key, attr in (("minLength", "minlength"), ("maxLength", "maxlength")):
            if key in definition:
                attrs[attr] = definition[key]
        pattern = definition.get("pattern")
        if definition.get("format") == "ipv4":
            pattern = "^" + IPV4_PATTERN + "$"
            attrs["inputmode"] = "decimal"
        if pattern and kind in ("text", "email", "url"):
            attrs["pattern"] = _html_pattern(pattern)
            attrs["title"] = f"Must match {definition['pattern']}" if definition.get("pattern") else "An IPv4 address"
        if definition.get("format") in ("ipv4", "ipv6"):
            attrs["autocomplete"] = "off"
            attrs["spellcheck"] = "false"
    elif kind == "datetime":
        attrs["type"] = "datetime-local"
    if kind in ("code", "json", "lines"):
        attrs["spellcheck"] = "false"
        attrs["class"] = "code"
    if kind == "multiselect":
        attrs["multiple"] = True
        attrs["size"] = 6
    return attrs


def _placeholder(definition, kind):
    if definition.get("placeholder"):
        return definition["placeholder"]
    return {"ipv4": "e.g. 10.0.0.1", "ipv6": "e.g. 2001:db8::1", "url": "https://…", "email": "name@example.com"}.get(
        definition.get("format"), "")


def _enum_options(definition, selected):
    colours = definition.get("enumColors") or {}
    options = []
    for value in definition.get("enum") or []:
        text = _text(value)
        colour = colours.get(text, "")
        options.append(Option(text, text, colour if COLOUR_RE.fullmatch(colour or "") else "", text in selected))
    return options


def entity_source(definition):
    """(blueprint identifier, dataset rule set or None) of an entity input (or an array of them)."""
    item = definition if definition.get("format") == "entity" else (definition.get("items") or {})
    return item.get("blueprint"), item.get("dataset", definition.get("dataset"))


def _sort_of(definition):
    """The input's `sort` (on the input, or on its items for an array of entities), or None."""
    return definition.get("sort") or (definition.get("items") or {}).get("sort")


def _entity_label(identifier, title):
    return f"{title} ({identifier})" if title and title != identifier else identifier


def _entity_options(field, user, selected, text):
    blueprint_identifier, dataset = entity_source(field.definition)
    try:
        rows, more = entity_choices_visible_to(user, blueprint_identifier, dataset, text=text, limit=OPTIONS_LIMIT,
                                               sort=_sort_of(field.definition))
    except PortalError as exc:
        field.options_note = f"The choices of this input cannot be listed ({exc.message})."
        return
    known = {identifier for identifier, _ in rows}
    # a chosen value outside the first page stays chosen (and shown) after a re-render
    extra = [value for value in selected if value and value not in known]
    titles = entity_titles_visible_to(user, blueprint_identifier, extra) if extra else {}
    field.options = [Option(identifier, _entity_label(identifier, title), selected=identifier in selected)
                     for identifier, title in rows]
    field.options += [Option(value, _entity_label(value, titles.get(value)), selected=True) for value in extra]
    field.entity_picker = True
    field.filter_text = text
    if more:
        field.options_note = (f"Showing the first {OPTIONS_LIMIT} matches" + (f" for “{text}”" if text else "")
                              + "; type in the filter to narrow them.")
    elif text:
        field.options_note = f"{len(rows)} match{'es' if len(rows) != 1 else ''} for “{text}”."


class Directory:
    """Users and teams for the `user`/`team` pickers, loaded once per form (not once per field)."""

    def __init__(self):
        self._users = self._teams = None

    def users(self):
        if self._users is None:
            rows = active_user_names(limit=DIRECTORY_LIMIT + 1)
            self._users = (rows[:DIRECTORY_LIMIT], len(rows) > DIRECTORY_LIMIT)
        return self._users

    def teams(self):
        if self._teams is None:
            rows = team_names(limit=DIRECTORY_LIMIT + 1)
            self._teams = ([(name, "") for name in rows[:DIRECTORY_LIMIT]], len(rows) > DIRECTORY_LIMIT)
        return self._teams


def _directory_options(field, fmt, directory, selected):
    rows, more = directory.users() if fmt == "user" else directory.teams()
    if more and field.kind == "select":  # too many for a select: typed, checked by the server
        field.kind = "email" if fmt == "user" else "text"
        field.attrs = {"type": field.kind, "autocomplete": "off"}
        return
    known = {value for value, _ in rows}
    field.options = [Option(value, f"{name} <{value}>" if name else value, selected=value in selected)
                     for value, name in rows]
    field.options += [Option(value, value, selected=True) for value in selected if value and value not in known]


def _ordered_keys(user_inputs):
    properties = user_inputs.get("properties") or {}
    order = [key for key in (user_inputs.get("order") or []) if key in properties]
    return order + [key for key in properties if key not in order]


def input_fields(action, *, user, data=None, filters=None, only=None):
    """The fields of the action's form in order (hidden inputs left out). `data` (a QueryDict) is what the
    user submitted — shown again as typed; without it the definitions' defaults are shown. `filters`
    (request.GET) carries the entity pickers' text filters (`filter.<key>`); `only` builds that one field."""
    user_inputs = (action.trigger or {}).get("userInputs") or {}
    definitions = user_inputs.get("properties") or {}
    required = set(user_inputs.get("required") or [])
    directory = Directory()
    fields = []
    for key in _ordered_keys(user_inputs):
        definition = definitions[key]
        if only is not None and key != only:
            continue
        if not isinstance(definition, dict) or not _plain_bool(definition.get("visible"), True):
            continue
        kind = _kind(definition)
        field = InputField(key=key, definition=definition, kind=kind, label=definition.get("title") or key,
                           required=key in required, disabled=_plain_bool(definition.get("disabled"), False),
                           help=_help(definition, kind), placeholder=_placeholder(definition, kind),
                           attrs=_attrs(definition, kind))
        if data is not None and not field.disabled:
            field.value, selected = _submitted(definition, kind, field.name, data)
        else:
            field.value, selected = _initial(definition, kind)
            if kind in ("select", "radios"):
                selected = [field.value]
        fmt = definition.get("format") or (definition.get("items") or {}).get("format")
        if definition.get("enum"):
            field.options = _enum_options(definition, selected)
        elif (definition.get("items") or {}).get("enum"):
            field.options = _enum_options(definition["items"], selected)
        elif fmt == "entity":
            _entity_options(field, user, selected, ((filters or {}).get(f"filter.{key}") or "").strip())
        elif fmt in ("user", "team"):
            _directory_options(field, fmt, directory, selected)
        fields.append(field)
    return fields


def input_groups(action, fields):
    """Fields grouped by Port's `userInputs.steps` ([{title, order}]) when the action has them, else one group."""
    steps = ((action.trigger or {}).get("userInputs") or {}).get("steps")
    by_key = {f.key: f for f in fields}
    groups, placed = [], set()
    if isinstance(steps, list):
        for step in steps:
            if not isinstance(step, dict) or not isinstance(step.get("order"), list):
                continue
            members = [by_key[k] for k in step["order"] if isinstance(k, str) and k in by_key and k not in placed]
            placed.update(f.key for f in members)
            if members:
                groups.append(InputGroup(title=str(step.get("title") or ""), fields=members))
    rest = [f for f in fields if f.key not in placed]
    if rest:
        groups.append(InputGroup(title="", fields=rest))
    return groups


def entity_target_field(action, *, user, chosen="", text=""):
    """The picker of the entity a DAY-2/DELETE action runs on, when the page was opened without `?entity=`:
    entities of the action's blueprint matching its condition that the user may read."""
    definition = {"type": "string", "format": "entity", "blueprint": action.blueprint_identifier,
                  "dataset": (action.trigger or {}).get("condition")}
    field = InputField(key="entity", definition=definition, kind="select", label="Entity", required=True,
                       help=f"The {action.blueprint_identifier} entity to run this action on.")
    _entity_options(field, user, [chosen], text)
    return field


# --- reading the submission --------------------------------------------------------------------------------

def _number(text, path):
    try:
        value = float(text)
    except ValueError:
        raise _Invalid(FieldError(path, f"{text!r} is not a number"))
    if value != value or value in (float("inf"), float("-inf")):
        raise _Invalid(FieldError(path, f"{text!r} is not a number"))
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _json(text, path):
    try:
        value = strictjson.loads(text)
    except json.JSONDecodeError as exc:
        raise _Invalid(FieldError(path, f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"))
    except ValueError as exc:
        raise _Invalid(FieldError(path, f"is not valid JSON ({exc})"))
    problem = strictjson.problem(value, path)
    if problem:
        raise _Invalid(problem)
    return value


def _datetime(text, path):
    """The control's value (datetime-local, UTC as its label says; or typed with an offset) → canonical text."""
    try:
        return instant_text(instant_parse(text, query=True))
    except NotAnInstant as exc:
        raise _Invalid(FieldError(path, str(exc)))


def _item(text, item_type, path):
    if item_type == "number":
        return _number(text, path)
    if item_type == "boolean":
        if text.lower() not in ("true", "false"):
            raise _Invalid(FieldError(path, f"{text!r} is not true or false"))
        return text.lower() == "true"
    if item_type in ("object", "array"):
        return _json(text, path)
    return text


class _Invalid(Exception):
    """Text of a field that is not what its input takes; `error` says where and why."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


def _value(field, data):
    """The typed value of one field, or None when left empty (the server applies the default / says required)."""
    definition, kind, path = field.definition, field.kind, field.name
    if kind == "checkbox":
        return field.name in data
    if kind in ("checkboxes", "multiselect"):
        chosen = [v for v in data.getlist(field.name) if v != ""]
        if not chosen:
            return None
        item_type = (definition.get("items") or {}).get("type", "string")
        return [_item(v, item_type, f"{path}[{i}]") for i, v in enumerate(chosen)]
    raw = data.get(field.name, "")
    if kind in ("textarea", "code", "json", "lines"):
        if raw.strip() == "":
            return None
    else:
        raw = raw.strip()
        if raw == "":
            return None
    if kind == "lines":
        item_type = (definition.get("items") or {}).get("type", "string")
        lines = [line.strip() for line in raw.splitlines() if line.strip()]
        return [_item(line, item_type, f"{path}[{i}]") for i, line in enumerate(lines)]
    if kind == "json":
        return _json(raw, path)
    if kind == "datetime":
        return _datetime(raw, path)
    if definition.get("type") == "number":
        return _number(raw, path)
    return raw


def properties_read(fields, data):
    """(properties, errors {key: message}) from a POSTed form. Disabled fields are left out (their default
    applies), as are empty ones."""
    properties, errors = {}, {}
    for field in fields:
        if field.disabled or field.key == "entity":
            continue
        try:
            value = _value(field, data)
        except _Invalid as exc:
            errors[field.key] = str(exc.error)
            continue
        if value is not None:
            properties[field.key] = value
    return properties, errors


def attach_run_errors(exc, fields, *, entity_field=None):
    """Put each error of a refused run request (a PortalError from `run_request`) on the field its path names:
    `properties.<key>...` on the input `key`, `entity` on the entity picker. A field with several errors shows
    them joined by "; ". Returns the text of the errors no field holds, for the top of the form ("" if none)."""
    by_key = {field.key: field for field in fields}
    placed, left = {}, []
    for error in exc.errors:
        parts = error.parts
        if parts[:1] == ("properties",) and len(parts) > 1 and parts[1] in by_key:
            target = by_key[parts[1]]
        elif parts[:1] == ("entity",) and entity_field is not None:
            target = entity_field
        else:
            left.append(str(error))
            continue
        placed.setdefault(id(target), (target, []))[1].append(str(error))
    for target, texts in placed.values():
        target.error = "; ".join(texts)
    return "; ".join(left)


def operation_takes_entity(action):
    return action.operation in (Operation.DAY2, Operation.DELETE)
