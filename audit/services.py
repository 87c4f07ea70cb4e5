"""`audit_record`: the one writer of AuditEvent. Called inside the caller's transaction; the event is sealed
into the hash chain after that transaction commits (audit/chain.py), so writers never wait on each other."""
from functools import lru_cache

from django.db import connection, transaction
from django.utils import timezone

from audit.chain import HASHED_FIELDS, audit_seal_after_commit
from audit.choices import AuditStatus
from audit.models import AuditEvent
from portal.middleware import current_request_id
from portal.prepared_statements import insert_prepared

REDACTED = "[redacted]"
# Parts of key names that hold credentials, compared lower-case with "-" as "_": clientSecret, X-Auth-Token,
# X-Api-Key, PRIVATE-TOKEN, Authorization and Proxy-Authorization, Cookie and Set-Cookie, AWS access keys.
SECRET_KEY_PARTS = ("secret", "password", "passwd", "token", "apikey", "api_key", "privatekey", "private_key",
                    "credential", "authorization", "cookie", "accesskey", "access_key")
SECRET_KEY_NAMES = frozenset({"auth", "pwd", "pass"})  # too short to look for inside longer names ("author")


@lru_cache(maxsize=4096)
def secret_key(key) -> bool:
    """Whether a key name (a JSON key, an HTTP header name) says its value is a credential. Kept per name: every
    audited entity write asks it of every key of its before and after (a deployment report, some fifty)."""
    name = str(key).lower().replace("-", "_")
    return name in SECRET_KEY_NAMES or any(part in name for part in SECRET_KEY_PARTS)


def redact(value):
    """Copy of `value` with anything under a secret-looking key replaced."""
    if isinstance(value, dict):
        return {key: REDACTED if secret_key(key) else redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


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


def audit_record_many(events, *, seal_after_commit=True):
    """Insert events in the current transaction (which must exist); the database marks each pending until it is
    sealed (migration audit 0004's trigger), in the same statement. They are sealed after the commit, in this
    process; with `seal_after_commit=False` by beat's `audit_seal_task` within AUDIT_SEAL_SECONDS instead (a
    path that CI calls at high rates, whose caller should not wait for the chain: a CI deployment report)."""
    if not events:
        return []
    assert connection.in_atomic_block, "audit_record must run inside the service's transaction"
    _insert(events)
    if not seal_after_commit:
        return events
    # One seal per transaction: a hook registered where a rollback that drops these events drops it too.
    open_savepoints = set(connection.savepoint_ids)
    if not any(hook is audit_seal_after_commit and savepoints <= open_savepoints
               for savepoints, hook, _ in connection.run_on_commit):
        transaction.on_commit(audit_seal_after_commit, robust=True)
    return events


# Every stored column but the id (audit/chain.py HASHED_FIELDS, which tests/audit/test_audit_sealing.py keeps whole)
_TEXT_FIELDS = tuple(name for name in HASHED_FIELDS if name not in ("id", "at", "context", "diff"))
_COLUMNS = ("at", *_TEXT_FIELDS, "context", "diff")
# The events as one JSON array, taken apart by the server (jsonb_to_recordset): one string to send, not an array
# per column that the client escapes element by element.
_INSERT_SQL = (f"INSERT INTO {AuditEvent._meta.db_table} ({', '.join(_COLUMNS)}) "
               f"SELECT {', '.join(_COLUMNS)} FROM jsonb_to_recordset(%s::jsonb) AS e(at timestamptz, "
               f"{', '.join(f'{name} text' for name in _TEXT_FIELDS)}, context jsonb, diff jsonb) RETURNING id")


def _insert(events):
    """Insert `events` (unsaved AuditEvents) in one statement prepared per connection (every audited write runs
    it), in order, and give each its id: what `bulk_create` did, without building its query each time."""
    insert_prepared("audit_insert", _INSERT_SQL, [
        {"at": event.at.isoformat(), **{name: str(getattr(event, name)) for name in _TEXT_FIELDS},
         "context": event.context, "diff": event.diff} for event in events], events)


def audit_record(**kwargs):
    return audit_record_many([audit_event_build(**kwargs)])[0]


def audit_record_failure(**kwargs):
    """A refusal is audited too; it commits on its own, whatever happens to the caller's transaction."""
    with transaction.atomic():
        return audit_record(status=AuditStatus.FAILURE, **kwargs)
