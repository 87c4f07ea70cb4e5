"""Literal credentials in invocation methods are write-only.

An action may hold a credential as plain text (`"headers": {"Authorization": "Bearer abc123"}`,
`"body": {"password": "..."}`, `"pipelineVariables": {"DEPLOY_TOKEN": "..."}`) rather than as a
`{{ .secrets.NAME }}` reference. Such a value is written, never read back: the API (`GET /v1/actions`,
admins included), the admin's form, audit diffs and stored run payloads show "[redacted]" in its place.
A write that sends "[redacted]" back in such a place keeps the stored value, so GET-then-PUT (or an admin
save) never replaces a credential by the mask; any other value replaces it.

Admins see the mask too: definitions are read by scripts and kept in repositories, and a credential read
back once is a credential leaked. An admin who needs to see or rotate one writes a new value — or, better,
moves it into a Secret.

Write-only places:
- every WEBHOOK header value but those of well-known headers that carry no credential (Content-Type, ...);
- the value of any key whose name says credential (audit.services.secret_key: token, password,
  authorization, api key, ...) anywhere in the method: body, workflowInputs, pipelineVariables, mapping;
- a `url` that carries a credential: a password in it (`https://ci:pw@host/`), a query parameter named
  like one (`?token=...`), or a Slack incoming-webhook address (its path is the credential).
The same holds for the approval notification's webhook `url` (`approvalNotification`).
A value that is nothing but templates over non-secret data (`{{ .run.id }}`) is shown: it holds no
credential. One with literal text, a jq string literal or a `.secrets` reference is not.
"""
from urllib.parse import parse_qsl, urlsplit

from actions.templating import path_text, reads_secrets, template_parts
from audit.services import REDACTED, secret_key
from portal.errors import ValidationFailed

PLAIN_HEADERS = frozenset({"accept", "accept-encoding", "accept-language", "cache-control", "content-language",
                           "content-type", "user-agent"})
_ABSENT = object()
SLACK_WEBHOOK_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})


def _template_only(value) -> bool:
    """A string of `{{ }}` parts (and blanks) that read no secret and quote no string literal."""
    if not isinstance(value, str):
        return False
    parts = template_parts(value)
    return any(isinstance(part, tuple) for part in parts) and all(
        not part.strip() if isinstance(part, str) else '"' not in part[0] and not reads_secrets(part[0])
        for part in parts)


def write_only(keys, value) -> bool:
    """Whether `value`, at `keys` inside an invocation method (`("headers", "Authorization")`), is a credential."""
    if not keys or not isinstance(keys[-1], str) or value is None or isinstance(value, bool):
        return False
    name = keys[-1]
    if len(keys) == 2 and keys[0] == "headers":
        if name.lower() in PLAIN_HEADERS and not (isinstance(value, str) and reads_secrets(value)):
            return False
        return not _template_only(value)
    if name == "url":
        return _url_carries_credential(value)
    return secret_key(name) and not _template_only(value)


def _url_carries_credential(value) -> bool:
    if not isinstance(value, str) or _template_only(value):
        return False
    try:
        parts = urlsplit(value)
        password, host = parts.password, (parts.hostname or "")
    except ValueError:  # not a URL (the definition checks refuse it anyway)
        return False
    return bool(password) or host.lower() in SLACK_WEBHOOK_HOSTS or any(
        secret_key(name) for name, _ in parse_qsl(parts.query, keep_blank_values=True))


def invocation_masked(invocation):
    """The invocation method as it may be shown: every write-only value "[redacted]"."""
    return _masked(invocation, ())


def _masked(value, keys):
    if isinstance(value, dict):
        return {key: REDACTED if write_only((*keys, key), item) else _masked(item, (*keys, key))
                for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item, (*keys, index)) for index, item in enumerate(value)]
    return value


def invocation_unmasked(submitted, stored, root="invocationMethod"):
    """`submitted` with each "[redacted]" in a write-only place replaced by the value `stored` (the method
    as saved, None for a new action) holds there. A mask where nothing write-only is stored is refused,
    naming its path (under `root`): it would send the text "[redacted]"."""
    return _unmasked(submitted, _ABSENT if stored is None else stored, (), root)


def _unmasked(value, stored, keys, root):
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            child = (*keys, key)
            kept = stored.get(key, _ABSENT) if isinstance(stored, dict) else _ABSENT
            if item == REDACTED and kept is not _ABSENT and write_only(child, kept):
                result[key] = kept
            elif item == REDACTED and (write_only(child, item) or key == "url"):
                raise ValidationFailed(f"{REDACTED!r} stands for a stored value and there is none here; send the "
                                       "value itself", path=path_text((root, *child)))
            else:
                result[key] = _unmasked(item, kept, child, root)
        return result
    if isinstance(value, list):
        return [_unmasked(item, stored[index] if isinstance(stored, list) and index < len(stored) else _ABSENT,
                          (*keys, index), root) for index, item in enumerate(value)]
    return value


def write_only_changes(before, after, root="invocationMethod") -> list:
    """Paths of the write-only values that differ between two invocation methods (for the audit message,
    since the diff shows both as "[redacted]")."""
    old, new = dict(_write_only_values(before or {}, ())), dict(_write_only_values(after or {}, ()))
    return sorted(path_text((root, *keys)) for keys in old.keys() | new.keys()
                  if old.get(keys, _ABSENT) != new.get(keys, _ABSENT))


def _write_only_values(value, keys):
    if isinstance(value, dict):
        for key, item in value.items():
            if write_only((*keys, key), item):
                yield (*keys, key), item
            else:
                yield from _write_only_values(item, (*keys, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _write_only_values(item, (*keys, index))
