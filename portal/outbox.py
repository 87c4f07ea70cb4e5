"""The transactional outbox: work that must happen after a commit, never lost, never run twice.

`outbox_enqueue(task, args, countdown)` writes an OutboxMessage in the caller's transaction, so the work exists
exactly when the change that calls for it does. After commit the transaction's messages are published to Celery
together (in a web process by its publishing thread, portal/outbox_publisher.py, so the request does not wait),
fail-fast: a broker that is down is logged, not raised (the request that committed still succeeds, and
its messages stay pending, unmarked for the sweep). The worker's `outbox_deliver` claims the message (one
UPDATE … RETURNING that sets a lease of OUTBOX_LEASE_SECONDS), runs the task's function and marks it done; the
claim is the guard against a message delivered twice (published again by the sweep, redelivered by the broker).
Beat's `outbox_sweep` publishes again what is due and was never published, lost by the broker (Redis flushed or
restarted without persistence) or held by a worker that died (its lease expired); a failing task is retried with
backoff up to OUTBOX_MAX_ATTEMPTS claims, then marked failed with its error. Done messages are purged after
OUTBOX_KEEP_DONE_DAYS.

What a task sends outside may still go twice when a worker dies mid-send; receivers de-duplicate on what the
task sends (a run's runId), see README.
"""
import logging
import threading
import time
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import connection as db_connection, transaction
from django.db.models import Case, F, Q, When
from django.utils import timezone

from portal.models import OutboxMessage
from portal.outbox_publisher import outbox_publish_committed
from portal.prepared_statements import (execute_prepared, insert_prepared, model_columns, model_from_row,
                                       select_prepared)

logger = logging.getLogger(__name__)
SWEEP_LIMIT = 500
BACKOFF_CAP_SECONDS = 300
BROKER_DOWN_SECONDS = 5.0
_broker_down_until = {}  # broker URL → time.monotonic() before which this process does not try it again
_publishers = threading.local()  # `held`: {broker URL: kombu connection} of this thread (outbox_publish_many)
_batches = threading.local()  # `open`: the outbox_batch of this thread, while one is open


class _PublishAfterCommit:
    """The on_commit hook of the messages one transaction queued at one savepoint level: one publish of them all."""

    def __init__(self):
        self.messages = []
        self.called = False  # messages queued once it runs (by a task it ran, in eager mode) need a hook of their own

    def __call__(self):
        self.called = True
        outbox_publish_committed(self.messages)


def outbox_enqueue(task, args=(), *, countdown=0) -> OutboxMessage:
    """Queue `task(*args)` to run after the caller's transaction commits (at once outside one), not before
    `countdown` seconds from now. `task` is a Celery task; args must be JSON. The messages a transaction queues
    are published together after its commit (one hook per savepoint level, so a rolled-back savepoint drops its
    own messages' hook with them). Inside `outbox_batch`, at its level, the row is written at the batch's end.
    The row is written published (`published_at`, the time it is handed to the broker, at the latest when the
    caller's commit hooks run): no statement after the commit marks it, and the sweep, which takes a published
    message for lost only OUTBOX_REPUBLISH_SECONDS after it was due, does not publish it a second time meanwhile.
    A publish that fails clears the mark, so the next sweep publishes it."""
    now = timezone.now()
    message = OutboxMessage(task=task.name, args=list(args), published_at=now,
                            not_before=now + timedelta(seconds=max(0.0, float(countdown))))
    db = transaction.get_connection()
    batch = getattr(_batches, "open", None)
    if batch is not None and db.in_atomic_block and set(db.savepoint_ids) == batch["level"]:
        batch["messages"].append(message)
        return message
    _insert([message])
    if not db.in_atomic_block:
        outbox_publish_many([message], stamped=True)
        return message
    _publish_after_commit(db, [message])
    return message


def _publish_after_commit(db, messages):
    level = set(db.savepoint_ids)
    hook = next((hook for savepoints, hook, _ in db.run_on_commit
                 if isinstance(hook, _PublishAfterCommit) and not hook.called and savepoints == level), None)
    if hook is None:
        hook = _PublishAfterCommit()
        transaction.on_commit(hook)
    hook.messages.extend(messages)


@contextmanager
def outbox_batch():
    """Inside the caller's transaction: the messages queued in the block at its savepoint level are written by
    one INSERT when the block ends without an error (their rows do not exist before; one queued in a savepoint
    inside is written at once, as usual). For a write that queues several messages on a hot path (a CI
    deployment report: the aggregation refresh and the automations' events). A batch inside a batch is the outer's."""
    db = transaction.get_connection()
    assert db.in_atomic_block, "outbox_batch must run inside the caller's transaction"
    if getattr(_batches, "open", None) is not None:
        yield
        return
    batch = _batches.open = {"level": set(db.savepoint_ids), "messages": []}
    try:
        yield
    finally:
        _batches.open = None
    if batch["messages"]:
        _insert(batch["messages"])
        _publish_after_commit(db, batch["messages"])


# The messages as one JSON array, taken apart by the server (jsonb_to_recordset): one string to send.
_INSERT_SQL = (f"INSERT INTO {OutboxMessage._meta.db_table} "
               "(task, args, not_before, attempts, published_at, lease_until, done_at, failed_at, last_error, created_at) "
               "SELECT m.task, m.args, m.not_before, 0, m.published_at, NULL, NULL, NULL, '', m.created_at "
               "FROM jsonb_to_recordset(%s::jsonb) "
               "AS m(task text, args jsonb, not_before timestamptz, published_at timestamptz, created_at timestamptz) "
               "RETURNING id")


def _insert(messages):
    """Write `messages` (new OutboxMessages) in one statement prepared per connection, in order, and give each its
    id: what `bulk_create` did, without building its query on every write that queues work."""
    now = timezone.now()
    rows = []
    for message in messages:
        message.created_at = now
        rows.append({"task": message.task, "args": message.args, "not_before": message.not_before.isoformat(),
                     "published_at": message.published_at and message.published_at.isoformat(),
                     "created_at": now.isoformat()})
    insert_prepared("outbox_insert", _INSERT_SQL, rows, messages)


def outbox_publish_many(messages, *, stamped=False, grouped=False) -> int:
    """Hand `messages` to the broker now, in order, failing fast: a broker error is logged and the messages not
    yet sent stay pending for the sweep. After a failure this process does not try that broker again for
    BROKER_DOWN_SECONDS, so a transaction that queued many messages waits for one connect timeout, not one each.
    Those the broker took are marked published in one statement; `stamped` messages (written published by
    `outbox_enqueue`) are not, but those it did not take are unmarked, in one statement. Returns how many it took.
    `grouped` (a transaction's messages, after its commit): one broker message carries them all, due when the
    first of them is; the worker that takes it publishes the others, each with its own countdown, then delivers
    the first (`outbox_deliver_task`): one publish while the request waits, whatever the transaction queued. Not
    in Celery's eager mode (tests), which runs each message as it is published, in the order queued.
    Each thread keeps its broker connection (and the channel's declared queue) between publishes: a connection and
    a queue declaration per message cost more than the rest of a CI deployment report."""
    from portal.celery import app

    broker = app.conf.broker_write_url or app.conf.broker_url
    if grouped and len(messages) > 1 and not app.conf.task_always_eager:
        first, *later = sorted(messages, key=lambda message: message.not_before)
        sends = [(first, [message.pk for message in later])]
    else:
        sends = [(message, []) for message in messages]
    sent = []
    for message, carried in sends:
        if time.monotonic() < _broker_down_until.get(broker, 0.0):
            break
        countdown = max(0.0, (message.not_before - timezone.now()).total_seconds())
        try:
            connection, kept = _publisher(app, broker)
            try:
                _send(connection, message, countdown, carried)
            except Exception:
                _publisher_drop(broker)
                if not kept:
                    raise
                # a kept connection the broker dropped: once more, on a new one
                _send(_publisher(app, broker)[0], message, countdown, carried)
        except Exception as exc:  # the broker is down or unreachable: the sweep publishes it once it is back
            _publisher_drop(broker)
            _broker_down_until[broker] = time.monotonic() + BROKER_DOWN_SECONDS
            logger.warning("outbox message %s (%s) not published, it stays pending: %s", message.id, message.task, exc)
            break
        sent += [message.pk, *carried]
    if stamped:
        taken = set(sent)
        unsent = [message.pk for message in messages if message.pk not in taken]
        if unsent:  # for the next sweep
            OutboxMessage.objects.filter(pk__in=unsent).update(published_at=None)
    elif sent:
        now = timezone.now()
        # Published; and a republished message whose worker died is freed, so the next sweep does not publish it again.
        OutboxMessage.objects.filter(pk__in=sent).update(
            published_at=now, lease_until=Case(When(lease_until__lt=now, then=None), default=F("lease_until")))
    return len(sent)


def _publisher(app, broker):
    """(this thread's connection to `broker`, whether an earlier publish made it), fail-fast timeouts."""
    held = _publishers.__dict__.setdefault("held", {})
    if broker in held:
        return held[broker], True
    options = {"max_retries": 0, "socket_connect_timeout": settings.OUTBOX_PUBLISH_TIMEOUT_SECONDS,
               "socket_timeout": settings.OUTBOX_PUBLISH_TIMEOUT_SECONDS}
    held[broker] = app.connection_for_write(transport_options=options,
                                            connect_timeout=settings.OUTBOX_PUBLISH_TIMEOUT_SECONDS)
    return held[broker], False


def _publisher_drop(broker):
    connection = _publishers.__dict__.get("held", {}).pop(broker, None)
    if connection is not None:
        try:
            connection.release()
        except Exception:  # noqa: BLE001 - it is being dropped because it failed
            logger.debug("outbox: releasing a failed broker connection failed too", exc_info=True)


def _send(connection, message, countdown, carried=()):
    from portal.tasks import outbox_deliver_task

    outbox_deliver_task.apply_async((message.id, *carried), countdown=countdown, connection=connection, retry=False)


def outbox_publish_carried(message_ids) -> int:
    """The worker's half of a grouped publish: publish each message a broker message carried (still pending and
    written published), each with its own countdown. Those the broker refuses are left for the sweep."""
    carried = select_prepared("outbox_carried", OutboxMessage, CARRIED_WHERE, [list(message_ids)], order_by="id")
    return outbox_publish_many(carried, stamped=True)


CARRIED_WHERE = "id = ANY(%s::bigint[]) AND done_at IS NULL AND failed_at IS NULL AND published_at IS NOT NULL"


_TABLE = OutboxMessage._meta.db_table
# One statement: of two claimers one takes the row lock first; the other waits for its commit, then finds the row
# it left (claimed, done or coalesced: PostgreSQL checks the conditions again on the row as it is now) and takes
# nothing. It returns the whole row, as the ORM would read it.
_CLAIM_SQL = (f"UPDATE {_TABLE} m SET attempts = attempts + 1, lease_until = %s "
              "WHERE id = %s AND done_at IS NULL AND failed_at IS NULL AND (lease_until IS NULL OR lease_until < %s) "
              "AND (NOT %s::boolean OR not_before <= %s) "
              f"RETURNING {model_columns(OutboxMessage, 'm')[0]}")
_DONE_SQL = f"UPDATE {_TABLE} SET done_at = %s, lease_until = NULL WHERE id = %s"


def outbox_claim(*, message_id, due=True) -> OutboxMessage | None:
    """Take `message_id` for OUTBOX_LEASE_SECONDS: pending, due (unless `due` is False), and not held by a live
    claim. Of two claimers one wins; a message done, failed or held by a live lease is not claimed. One statement
    prepared per connection (every delivery runs it)."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    due_by = now + timedelta(seconds=1)  # the broker's countdown may end a hair early
    with db_connection.cursor() as cursor:
        execute_prepared(cursor, "outbox_claim", _CLAIM_SQL, [lease, message_id, now, bool(due), due_by],
                         generic_plan=True)
        row = cursor.fetchone()
    return None if row is None else model_from_row(OutboxMessage, "m", row)


def outbox_deliver(*, message_id) -> bool:
    """The worker's half: claim the message, run its task's function here, mark it done (or schedule its retry).
    False when the message was not claimable (done, failed, held, or not due)."""
    from portal.celery import app

    # Celery's eager mode (CELERY_TASK_ALWAYS_EAGER, tests) runs a task at once, its countdown ignored: so does this.
    message = outbox_claim(message_id=message_id, due=not app.conf.task_always_eager)
    if message is None:
        logger.info("outbox message %s: not claimable (done, failed, held by another worker or not due)", message_id)
        return False
    try:
        app.tasks[message.task](*message.args)
    except Exception as exc:
        outbox_failed(message=message, error=exc)
        return True
    with db_connection.cursor() as cursor:
        execute_prepared(cursor, "outbox_done", _DONE_SQL, [timezone.now(), message.pk], generic_plan=True)
    return True


def outbox_coalesce(task, *, limit=500) -> list:
    """For a task whose work covers many messages at once: take the other pending messages of `task` that no
    worker holds, due or not, and mark them done in the caller's transaction (which does their work, so a rollback
    leaves them pending). Returns their args, oldest first. Their deliveries find them done and do nothing."""
    assert transaction.get_connection().in_atomic_block, "outbox_coalesce must run inside the task's transaction"
    taken = list(OutboxMessage.objects.select_for_update(skip_locked=True)
                 .filter(_pending(), task=task.name, lease_until__isnull=True).order_by("id")[:limit])
    if taken:
        OutboxMessage.objects.filter(pk__in=[m.pk for m in taken]).update(done_at=timezone.now())
    return [m.args for m in taken]


def outbox_failed(*, message, error) -> None:
    """A claim whose task raised: retried after a backoff while claims remain, else failed for good (logged)."""
    text = f"{type(error).__name__}: {error}"[:2000]
    now = timezone.now()
    if message.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
        OutboxMessage.objects.filter(pk=message.pk).update(failed_at=now, lease_until=None, last_error=text)
        logger.error("outbox message %s (%s%r) failed after %d attempts: %s", message.id, message.task,
                     tuple(message.args), message.attempts, text)
        return
    not_before = now + timedelta(seconds=outbox_backoff_seconds(message.attempts))
    OutboxMessage.objects.filter(pk=message.pk).update(not_before=not_before, lease_until=None, published_at=None,
                                                       last_error=text)
    logger.warning("outbox message %s (%s) attempt %d failed, again at %s: %s", message.id, message.task,
                   message.attempts, not_before.isoformat(), text)


def outbox_backoff_seconds(attempts: int) -> float:
    """Seconds before the claim after `attempts` failed ones: 2, 4, 8 … capped at BACKOFF_CAP_SECONDS."""
    return float(min(2 ** attempts, BACKOFF_CAP_SECONDS))


def outbox_sweep() -> int:
    """Beat: publish again every due message that was never published, was published but not claimed within
    OUTBOX_REPUBLISH_SECONDS of being due (the broker lost it), or whose worker's lease expired. A message whose
    lease expired on its last allowed claim is failed instead. Returns how many were published."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.OUTBOX_REPUBLISH_SECONDS)
    unclaimed = Q(lease_until__isnull=True) & (Q(published_at__isnull=True) |
                                               Q(published_at__lt=stale, not_before__lt=stale))
    expired = Q(lease_until__lt=now)
    due = list(OutboxMessage.objects.filter(_pending(), unclaimed | expired, not_before__lte=now)
               .order_by("not_before")[:SWEEP_LIMIT])
    publishable = []
    for message in due:
        if message.lease_until is not None and message.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
            outbox_failed(message=message, error=TimeoutError(
                f"the worker's lease expired on attempt {message.attempts}, the last allowed"))
            continue
        publishable.append(message)
    return outbox_publish_many(publishable)  # the broker down: the rest waits for the next sweep


def outbox_purge() -> int:
    """Delete messages done more than OUTBOX_KEEP_DONE_DAYS ago; failed ones stay for the admin to see."""
    cutoff = timezone.now() - timedelta(days=settings.OUTBOX_KEEP_DONE_DAYS)
    deleted, _ = OutboxMessage.objects.filter(done_at__lt=cutoff).delete()
    return deleted


def _pending():
    return Q(done_at__isnull=True, failed_at__isnull=True)
