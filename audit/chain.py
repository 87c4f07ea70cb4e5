"""The audit log's hash chain: events are sealed into it after they commit, by one sealer at a time.

Writers only insert an AuditEvent (the database adds its AuditPending row) in their own transaction (audit/services.py) and
never wait on the chain. `audit_seal` — run after each audited commit and from beat every few seconds —
takes a transaction-level advisory try-lock, gives the committed pending events the next positions in id order,
and writes their AuditSeal: sha256 of the previous seal's hash and the event's canonical JSON, which holds
every stored field of the event. `audit_chain_verify` walks the seals by position in batches (constant
memory) and names the first one that does not follow.
"""
import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta, timezone as dt_timezone

from django.db import connection, transaction
from django.db.models import Subquery
from django.utils import timezone

from audit.models import AuditEvent, AuditPending, AuditSeal

SEAL_LOCK = 0x6175646974  # pg advisory lock id of the one sealer ("audit")
BATCH = 500
# Every stored column of AuditEvent (tests/audit/test_audit_sealing.py checks that none is left out).
HASHED_FIELDS = ("id", "at", "actor", "actor_type", "origin", "verb", "action", "resource_type", "identifier",
                 "blueprint", "run_id", "context", "diff", "status", "message", "request_id")
UNSEALED_GRACE = timedelta(minutes=10)  # an event still unsealed this long after it was recorded is a fault


def event_values(event) -> dict:
    """The event's stored fields as JSON values (`at` in UTC, ISO 8601 with microseconds)."""
    values = {name: getattr(event, name) for name in HASHED_FIELDS}
    values["at"] = event.at.astimezone(dt_timezone.utc).isoformat()
    return values


def event_canonical(event) -> str:
    """The event as sealed: its stored fields as sorted, compact JSON."""
    return json.dumps(event_values(event), sort_keys=True, separators=(",", ":"))


def seal_hash(previous_hash: str, event) -> str:
    return hashlib.sha256((previous_hash + event_canonical(event)).encode()).hexdigest()


SEAL_TABLE, PENDING_TABLE = AuditSeal._meta.db_table, AuditPending._meta.db_table


def _seal_batch(*, wait) -> int | None:
    """Seal up to BATCH pending events in one transaction holding the sealer's transaction-level advisory lock
    (released by the commit): the lock, the events with the chain's head, the seals written and the pending rows
    deleted: three statements. None when another sealer holds the lock and `wait` is false."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {'pg_advisory_xact_lock' if wait else 'pg_try_advisory_xact_lock'}(%s)", [SEAL_LOCK])
            if not wait and not cursor.fetchone()[0]:
                return None
        head = AuditSeal.objects.order_by("-position")
        events = list(AuditEvent.objects.filter(id__in=AuditPending.objects.order_by("event_id").values("event_id")[:BATCH])
                      .annotate(head_position=Subquery(head.values("position")[:1]), head_hash=Subquery(head.values("hash")[:1]))
                      .order_by("id"))
        if not events:
            return 0
        position, previous = events[0].head_position or 0, events[0].head_hash or ""
        rows = []
        for event in events:
            position += 1
            digest = seal_hash(previous, event)
            rows.append((position, event.pk, previous, digest))
            previous = digest
        with connection.cursor() as cursor:
            cursor.execute(f"WITH sealed AS (INSERT INTO {SEAL_TABLE} (position, event_id, previous_hash, hash) "
                           f"SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::varchar[], %s::varchar[]) "
                           f"RETURNING event_id) DELETE FROM {PENDING_TABLE} WHERE event_id IN (SELECT event_id FROM sealed)",
                           [list(column) for column in zip(*rows)])
        return len(rows)


def audit_seal(*, wait=False):
    """Seal every committed pending event; the number sealed, or None when another sealer holds the lock.

    `wait=True` waits for that sealer instead (commands and tests: afterwards everything committed is sealed)."""
    sealed, batch = 0, BATCH
    while batch == BATCH:  # a short batch was the last: no second round trip after each audited commit
        batch = _seal_batch(wait=wait)
        if batch is None:
            return None if sealed == 0 else sealed
        sealed += batch
    return sealed


def audit_seal_after_commit():
    """on_commit hook of audited transactions: seal now, in this process, unless a sealer is already running
    (then it, or beat's next `audit_seal_task`, seals these events)."""
    audit_seal(wait=False)


@dataclass(frozen=True)
class ChainFault:
    reason: str
    position: int | None = None
    event_id: int | None = None

    def __str__(self):
        where = ", ".join(part for part in (f"event {self.event_id}" if self.event_id is not None else "",
                                            f"position {self.position}" if self.position is not None else "") if part)
        return f"{where}: {self.reason}" if where else self.reason


@dataclass(frozen=True)
class ChainVerification:
    fault: ChainFault | None
    length: int  # seals that were checked (all of them when there is no fault)
    head_hash: str  # hash of the last seal checked


def _short(digest):
    return digest[:16] + "…" if digest else "''"


def _seal_fault(expected, previous, seal, event):
    position, event_id, previous_hash, digest = seal
    if position != expected:
        return ChainFault(f"position {expected} is missing: the chain jumps to {position}", position, event_id)
    if event is None:
        return ChainFault(f"the seal points at event {event_id}, which is missing", position, event_id)
    if previous_hash != previous:
        return ChainFault(f"previous_hash {_short(previous_hash)} is not the hash of position {position - 1} "
                          f"({_short(previous)})", position, event_id)
    computed = seal_hash(previous, event)
    if digest != computed:
        return ChainFault(f"the stored event no longer matches its seal (sealed {_short(digest)}, "
                          f"now hashes to {_short(computed)})", position, event_id)
    return None


def sealed_events(*, after_position=0, since=None):
    """(position, event id, previous hash, hash), event or None when missing — by position, in batches, so
    memory stays constant however long the log. `since`: only events recorded at or after that instant."""
    last = after_position
    while True:
        seals = AuditSeal.objects.filter(position__gt=last)
        if since is not None:
            seals = seals.filter(event__at__gte=since)
        batch = list(seals.order_by("position").values_list("position", "event_id", "previous_hash", "hash")[:BATCH])
        if not batch:
            return
        events = AuditEvent.objects.in_bulk([seal[1] for seal in batch])
        for seal in batch:
            yield seal, events.get(seal[1])
        last = batch[-1][0]


def audit_chain_verify(*, checkpoints=None, unsealed_grace=UNSEALED_GRACE) -> ChainVerification:
    """Walk the whole chain by position and return its first fault, if any.

    `checkpoints` maps a position to (the hash a signed checkpoint recorded there, a label for messages): the
    seal at each must still have that hash, and the chain must reach the furthest one (so rewriting history
    and re-hashing what follows, or deleting the newest rows, is found). Events unsealed for longer than
    `unsealed_grace` are faults too (the sealer is not running, or their pending rows were removed)."""
    checkpoints = checkpoints or {}
    expected, previous = 1, ""
    for seal, event in sealed_events():
        fault = _seal_fault(expected, previous, seal, event)
        if fault is None and seal[0] in checkpoints:
            recorded, label = checkpoints[seal[0]]
            if recorded != seal[3]:
                fault = ChainFault(f"the chain's hash here is {_short(seal[3])} but {label} recorded "
                                   f"{_short(recorded)}: history up to here was rewritten", seal[0], seal[1])
        if fault:
            return ChainVerification(fault, expected - 1, previous)
        previous, expected = seal[3], expected + 1
    length = expected - 1
    furthest = max(checkpoints, default=0)
    if furthest > length:
        return ChainVerification(ChainFault(f"the chain ends at position {length} but {checkpoints[furthest][1]} "
                                            f"recorded position {furthest}: its newest seals were removed"), length, previous)
    stale = (AuditEvent.objects.filter(seal__isnull=True, at__lt=timezone.now() - unsealed_grace)
             .order_by("id").values_list("id", "at").first())
    if stale:
        return ChainVerification(ChainFault(f"recorded at {stale[1].isoformat()} and still not sealed", None, stale[0]),
                                 length, previous)
    return ChainVerification(None, length, previous)
