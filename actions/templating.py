"""`{{ jq }}` templates in invocation methods (webhook url/headers/body, upsert mappings), rendered over a
run's context (PORT_API.md "Templating").

- a string that is exactly `{{ expr }}` becomes the jq result, whatever its JSON type;
- a string with `{{ expr }}` parts among text gets each part stringified (strings as they are, other
  values as compact JSON);
- the key `"{{ spreadValue() }}"` merges its (rendered) object value into the enclosing object;
- an object pair whose value renders to null is dropped.

jq runs through portal.jq (sandboxed, time-bounded); a failure raises TemplateError naming the path of
the template at fault (`body.message`) and jq's message.
"""
import json
import re

from portal.jq import JqError, JqTimeout, jq_first
from portal.timefmt import iso_z

SPREAD_KEY_RE = re.compile(r"^\{\{\s*spreadValue\(\)\s*\}\}$")
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TemplateError(Exception):
    def __init__(self, path, message):
        self.path, self.message = path, message
        super().__init__(f"{path}: {message}" if path else message)


def _child_path(path, key):
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER_RE.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


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


def _evaluate(expression, context, path):
    if not expression.strip():
        raise TemplateError(path, "the template {{ }} is empty")
    try:
        return jq_first(expression, context)
    except JqTimeout as exc:
        raise TemplateError(path, f"the jq expression {expression.strip()!r} did not finish in time ({exc.message})") from None
    except JqError as exc:
        raise TemplateError(path, f"the jq expression {expression.strip()!r} failed: {exc.message}") from None


def _stringify(value):
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _render_string(text, context, path):
    if "{{" not in text:
        return text
    parts = template_parts(text)
    if len(parts) == 1 and isinstance(parts[0], tuple):
        return _evaluate(parts[0][0], context, path)
    return "".join(part if isinstance(part, str) else _stringify(_evaluate(part[0], context, path)) for part in parts)


def render_template(value, context, path=""):
    """`value` (any JSON) with its templates rendered over `context`."""
    if isinstance(value, str):
        return _render_string(value, context, path)
    if isinstance(value, list):
        return [render_template(item, context, _child_path(path, index)) for index, item in enumerate(value)]
    if isinstance(value, dict):
        rendered = {}
        for key, item in value.items():
            child_path = _child_path(path, key)
            result = render_template(item, context, child_path)
            if isinstance(key, str) and SPREAD_KEY_RE.match(key.strip()):
                if result is None:
                    continue
                if not isinstance(result, dict):
                    raise TemplateError(child_path, f"spreadValue() needs an object to merge, got {_json_type(result)}")
                rendered.update(result)
            elif result is not None:
                rendered[key] = result
        return rendered
    return value


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
            "at": iso_z(run.created_at),
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
