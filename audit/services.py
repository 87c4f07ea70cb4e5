"""`audit_record`: the one writer of AuditEvent. Called inside the caller's transaction."""
import hashlib
import json

from django.db import connection, transaction
from django.utils import timezone

from audit.choices import AuditStatus
from audit.models import AuditEvent
from portal.middleware import current_request_id

REDACTED = "[redacted]"
# Parts of key names that hold credentials, compared lower-case with "-" as "_": clientSecret, X-Auth-Token,
# X-Api-Key, PRIVATE-TOKEN, Authorization and Proxy-Authorization, Cookie and Set-Cookie, AWS access keys.
SECRET_KEY_PARTS = ("secret", "password", "passwd", "token", "apikey", "api_key", "privatekey", "private_key",
                    "credential", "authorization", "cookie", "accesskey", "access_key")
SECRET_KEY_NAMES = frozenset({"auth", "pwd", "pass"})  # too short to look for inside longer names ("author")
CHAIN_LOCK = 0x6175646974  # pg advisory lock id for the hash chain ("audit")


def secret_key(key) -> bool:
    """Whether a key name (a JSON key, an HTTP header name) says its value is a credential."""
    name = str(key).lower().replace("-", "_")
    return name in SECRET_KEY_NAMES or any(part in name for part in SECRET_KEY_PARTS)


def redact(value):
    """Copy of `value` with anything under a secret-looking key replaced."""
    if isinstance(value, dict):
        return {key: REDACTED if secret_key(key) else redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def _canonical(event: AuditEvent) -> str:
    return json.dumps(
        [event.at.isoformat(), event.actor, event.origin, event.verb, event.resource_type, event.identifier,
         event.blueprint, event.diff, event.status, event.message],
        sort_keys=True, separators=(",", ":"), default=str,
    )


def event_hash(previous_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256((previous_hash + _canonical(event)).encode()).hexdigest()


def audit_event_build(*, actor, verb, action, resource_type, identifier, blueprint="", run_id="",
                      before=None, after=None, context=None, status=AuditStatus.SUCCESS, message=""):
    return AuditEvent(
        at=timezone.now(),
        actor=actor.label,
        actor_type=actor.kind,
        origin=actor.origin,
        verb=verb,
        action=action,
        resource_type=resource_type,
        identifier=str(identifier),
        blueprint=blueprint or "",
        run_id=run_id or "",
        # A change written by an Ocean integration names it (its User-Agent) beside the credential it used.
        context=redact({**(context or {}), **({"datasource": actor.datasource} if actor.datasource else {})}),
        diff={"before": redact(before), "after": redact(after)},
        status=status,
        message=message,
        request_id=current_request_id(),
    )


def audit_record_many(events):
    """Chain and insert events in the current transaction (which must exist)."""
    if not events:
        return []
    assert connection.in_atomic_block, "audit_record must run inside the service's transaction"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK])
    previous = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or ""
    for event in events:
        event.previous_hash = previous
        event.hash = previous = event_hash(previous, event)
    return AuditEvent.objects.bulk_create(events)


def audit_record(**kwargs):
    return audit_record_many([audit_event_build(**kwargs)])[0]


def audit_record_failure(**kwargs):
    """A refusal is audited too; it commits on its own, whatever happens to the caller's transaction."""
    with transaction.atomic():
        return audit_record(status=AuditStatus.FAILURE, **kwargs)


def audit_chain_verify(events=None):
    """Return the first event whose hash does not follow from its predecessor, or None."""
    previous = ""
    for event in events if events is not None else AuditEvent.objects.order_by("id").iterator():
        if event.previous_hash != previous or event.hash != event_hash(previous, event):
            return event
        previous = event.hash
    return None
