"""`{{ jq }}` templates in invocation methods (webhook url/headers/body, upsert mappings), rendered over a
run's context (PORT_API.md "Templating").

- a string that is exactly `{{ expr }}` becomes the jq result, whatever its JSON type;
- a string with `{{ expr }}` parts among text gets each part stringified (strings as they are, other
  values as compact JSON);
- the key `"{{ spreadValue() }}"` merges its (rendered) object value into the enclosing object;
- an object pair whose value renders to null is dropped.

jq runs through portal.jq (sandboxed, time-bounded); a failure raises TemplateError naming the path of
the template at fault (`body.message`) and jq's message.

Secrets never reach what a run stores. A renderer gives each value twice: as sent, and as the run may
store and show it, where every template part whose result depends on the secrets is "[redacted]" — by
its position in the template, not by looking for the secret's value in the output, so a transformed
secret (`{{ .secrets.X | @base64 }}`, `"Bearer " + .secrets.X`, `@uri`, `ascii_downcase`, a split) is
caught as surely as the plain one. A part depends on the secrets when its expression names them, or
when it gives another result (or another error) over the same context with every secret replaced by a
random stand-in: that catches reads that never spell `.secrets` (`.["sec" + "rets"]`, `tojson` of the
whole context). Restricting templates to whole-value secrets instead would forbid the common
`"Bearer {{ .secrets.TOKEN }}"` and still let any expression copy the secrets object somewhere.
"""
import json
import re
from secrets import token_hex
from typing import NamedTuple

from audit.services import REDACTED
from portal.jq import JqError, JqTimeout, jq_first, jq_first_many
from portal.datetimes import instant_text

SPREAD_KEY_RE = re.compile(r"^\{\{\s*spreadValue\(\)\s*\}\}$")
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Text rendered from secrets at least this long is also scrubbed from what receivers answer (shorter
# results, `true` or `20`, would scrub everything else too).
MIN_REVEALED_LENGTH = 6


class TemplateError(Exception):
    def __init__(self, path, message):
        self.path, self.message = path, message
        super().__init__(f"{path}: {message}" if path else message)


def path_join(path, key):
    """`path` and one more key, as error messages name places: `body.message`, `headers["X-Api-Key"]`, `items[0]`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER_RE.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def path_text(keys) -> str:
    text = ""
    for key in keys:
        text = path_join(text, key)
    return text


def reads_secrets(expression: str) -> bool:
    """Whether a jq expression names the secrets (conservatively: the word anywhere in it)."""
    return "secrets" in expression


def template_parts(text: str) -> list:
    """Split `text` into literal strings and ("expr",) tuples. A `}}` closes a part only outside braces the
    expression opened, so `{{ {a: {b: 1}} }}` is one object-building expression."""
    parts, literal, i, n = [], [], 0, len(text)
    while i < n:
        start = text.find("{{", i)
        if start < 0:
            break
        end = _part_end(text, start + 2)
        if end < 0:
            break  # an unclosed `{{` stays text
        literal.append(text[i:start])
        if literal and "".join(literal):
            parts.append("".join(literal))
        literal = []
        parts.append((text[start + 2:end],))
        i = end + 2
    rest = "".join(literal) + text[i:]
    if rest:
        parts.append(rest)
    return parts


def _part_end(text, i):
    depth, in_string, n = 0, False, len(text)
    while i < n:
        c = text[i]
        if in_string:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "{":
            depth += 1
        elif c == "}":
            if depth == 0 and text.startswith("}}", i):
                return i
            depth = max(depth - 1, 0)
        i += 1
    return -1


def _stringify(value):
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Rendered(NamedTuple):
    value: object  # what the backend sends
    stored: object  # what the run may store and show: secret parts and literal credentials "[redacted]"


class TemplateRenderer:
    """Renders templates over one context. `write_only(keys, template)` says which object values are literal
    credentials, stored as "[redacted]" whatever they render to (actions.credentials.write_only for
    invocation methods). `revealed` collects the text rendered from secrets and credentials, for scrubbing
    echoes of it from what receivers answer."""

    def __init__(self, context, *, write_only=None):
        self.context = context
        self.write_only = write_only
        self.revealed = []
        names = list(context.get("secrets") or {})
        stand_in = token_hex(16)
        self._stand_in_context = ({**context, "secrets": {name: f"{stand_in}-{name}" for name in names}}
                                  if names else None)

    def render(self, value, *keys) -> Rendered:
        """`value` (any JSON) with its templates rendered; `keys` name its place (`"body"`) in error messages."""
        if isinstance(value, str):
            return self._string(value, keys)
        if isinstance(value, list):
            items = [self.render(item, *keys, index) for index, item in enumerate(value)]
            return Rendered([item.value for item in items], [item.stored for item in items])
        if isinstance(value, dict):
            return self._object(value, keys)
        return Rendered(value, value)

    def _object(self, value, keys):
        rendered, stored = {}, {}
        for key, item in value.items():
            child = (*keys, key)
            result = self.render(item, *child)
            if isinstance(key, str) and SPREAD_KEY_RE.match(key.strip()):
                if result.value is None:
                    continue
                if not isinstance(result.value, dict):
                    raise TemplateError(path_text(child), f"spreadValue() needs an object to merge, got {_json_type(result.value)}")
                rendered.update(result.value)
                stored.update(result.stored if isinstance(result.stored, dict) else dict.fromkeys(result.value, REDACTED))
            elif result.value is not None:
                rendered[key] = result.value
                if self.write_only and self.write_only(child, item):
                    stored[key] = REDACTED
                    self._reveal(result.value)
                else:
                    stored[key] = result.stored
        return Rendered(rendered, stored)

    def _string(self, text, keys):
        if "{{" not in text:
            return Rendered(text, text)
        parts = template_parts(text)
        if len(parts) == 1 and isinstance(parts[0], tuple):
            value, secret = self._evaluate(parts[0][0], keys)
            return Rendered(value, REDACTED if secret and value is not None else value)
        sent, stored = [], []
        for part in parts:
            if isinstance(part, str):
                sent.append(part)
                stored.append(part)
                continue
            value, secret = self._evaluate(part[0], keys)
            sent.append(_stringify(value))
            stored.append(REDACTED if secret else sent[-1])
        return Rendered("".join(sent), "".join(stored))

    def _evaluate(self, expression, keys):
        """(the jq result, whether it depends on the secrets)."""
        path = path_text(keys)
        if not expression.strip():
            raise TemplateError(path, "the template {{ }} is empty")
        secret = reads_secrets(expression)
        try:
            if secret or self._stand_in_context is None:
                value = jq_first(expression, self.context)
            else:  # one round trip for both contexts
                value, stand_in = jq_first_many(expression, [self.context, self._stand_in_context])
                if isinstance(value, JqError):
                    secret = not (isinstance(stand_in, JqError) and stand_in.message == value.message)
                    raise value
                secret = stand_in != value
        except JqTimeout as exc:
            raise TemplateError(path, f"the jq expression {expression.strip()!r} did not finish in time ({exc.message})") from None
        except JqError as exc:
            # jq quotes the value it choked on ("Cannot parse 's3cr3t' as JSON"): not when that may be a secret.
            detail = "its message is withheld, as it may quote a secret" if secret else exc.message
            raise TemplateError(path, f"the jq expression {expression.strip()!r} failed: {detail}") from None
        if secret:
            self._reveal(value)
        return value, secret

    def _reveal(self, value):
        text = _stringify(value) if value is not None else ""
        if len(text) >= MIN_REVEALED_LENGTH:
            self.revealed.append(text)


def render_template(value, context, path=""):
    """`value` (any JSON) with its templates rendered over `context`: what is sent, nothing to store."""
    return TemplateRenderer(context).render(value, *((path,) if path else ())).value


def _json_type(value):
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}.get(type(value), "null")


def user_json(user) -> dict | None:
    if user is None:
        return None
    return {"email": user.email, "firstName": user.first_name, "lastName": user.last_name}


def run_template_context(run, *, secrets=None, portal=None) -> dict:
    """What templates of `run`'s action see. `run` should come with select_related("action", "requested_by",
    "entity__blueprint"). `secrets` defaults to every admin-managed secret, decrypted; `portal` to portal_json()
    (callers building many contexts pass both once). `.entity` is the entity as the requester may read it (mirror
    values from entities hidden from them are null): the payload is shown on their run; an automation's run (no
    requester) sees it as the system does."""
    from actions.secrets import secrets_for_templates
    from catalog.selectors.entities import entities_json

    action = run.action
    entity = None
    if run.entity_id is not None:
        entity = entities_json([run.entity], user=run.requested_by)[0]
    return {
        "inputs": run.properties or {},
        "trigger": {
            "by": {"user": user_json(run.requested_by)},
            "origin": run.origin,
            "at": instant_text(run.created_at),
            "operation": action.operation or None,
        },
        "event": run.trigger_event,  # the event object that fired an automation run
        "entity": entity,
        "action": {"identifier": action.identifier, "blueprint": action.blueprint_identifier or None},
        "run": {"id": run.id},
        "portal": portal_json() if portal is None else portal,
        "secrets": secrets_for_templates() if secrets is None else secrets,
    }


def portal_json() -> dict:
    """`.portal` in templates: this portal's own address and its platform Slack channel (NotificationSettings,
    else SLACK_DEFAULT_CHANNEL), so starter actions and automations need no per-install editing."""
    from django.conf import settings

    from actions.models import NotificationSettings

    channel = NotificationSettings.current().platform_channel or getattr(settings, "SLACK_DEFAULT_CHANNEL", "")
    return {"url": settings.PORTAL_BASE_URL.rstrip("/"), "slackChannel": channel or None}
