"""Backstage entity references (`[kind:][namespace/]name`) and the portal identifiers they map to.

Backstage resolves a reference's missing kind from the field it is in (`spec.owner` → Group, `spec.system` →
System) and its missing namespace from the entity that holds it; names compare case-insensitively. The
identifier of `kind:namespace/name` is `name` in the `default` namespace and `namespace/name` elsewhere, both
lowercased, so the same reference written in any case or any form maps to one entity; the kind picks the
blueprint."""
import re

from portal.errors import ValidationFailed

DEFAULT_NAMESPACE = "default"
# Backstage's rule for names and namespaces: alphanumerics joined by single [-_.], at most 63 characters.
NAME_RE = re.compile(r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)*")
NAME_MAX = 63


def check_name(value, field):
    if not isinstance(value, str) or len(value) > NAME_MAX or not NAME_RE.fullmatch(value):
        raise ValidationFailed(f"{value!r} is not a Backstage name (letters and digits joined by single -, _ or ., "
                               f"at most {NAME_MAX} characters)", path=field)
    return value


def reference_parse(value, *, field, default_kind=None, default_namespace=DEFAULT_NAMESPACE):
    """(kind, namespace, name), lowercased, of a reference string; `default_kind` None: the kind must be given."""
    if not isinstance(value, str) or not value:
        raise ValidationFailed("must be an entity reference, [kind:][namespace/]name", path=field)
    kind, _, rest = value.rpartition(":") if ":" in value else ("", "", value)
    namespace, _, name = rest.rpartition("/") if "/" in rest else (default_namespace, "", rest)
    kind = kind or default_kind
    if not kind:
        raise ValidationFailed(f"{value!r} names no kind, and this field has no default kind", path=field)
    check_name(name, field)
    check_name(namespace, field)
    return kind.lower(), namespace.lower(), name.lower()


def entity_identifier(namespace, name):
    return name.lower() if namespace.lower() == DEFAULT_NAMESPACE else f"{namespace.lower()}/{name.lower()}"


def reference_string(kind, namespace, name):
    return f"{kind}:{namespace}/{name}"
