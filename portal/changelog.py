"""The change log: entity and run changes published to `<organization>.change.log` on the user's Kafka, in commit
order per key (a blueprint's entity, a run), never lost.

`changelog_enqueue` writes a ChangeLogMessage in the transaction of the change (the subscriber in
actions/changelog.py decides what goes there) and queues a drain through the outbox. `changelog_drain` publishes
pending messages in id order under a transaction-scoped advisory lock, so one drainer at a time: the key is the
message key, so one entity's changes land on one partition, and the idempotent producer keeps their order there.
Per key, ids are commit order: a writer inserts its message while holding the entity's (or run's) row lock, so
the next writer of that row inserts after it committed. A message is marked published only by its delivery
report; a key whose message failed stops there (its later messages wait), so a key's order holds across retries.
Beat drains every 5 s as well, so a broker outage only delays the log.
"""
import logging

from django.db import connection, transaction
from django.utils import timezone

from portal.kafka import Delivery, change_log_topic, kafka_configured, kafka_publish_many, value_bytes
from portal.models import ChangeLogMessage

logger = logging.getLogger(__name__)
DRAIN_LIMIT = 500
_DRAIN_LOCK = 0x6B61666B61  # pg_advisory_xact_lock key of the drainer ("kafka")


def changelog_enqueue(messages) -> None:
    """Queue [(key, value)] for the change log in the caller's transaction, and a drain after its commit."""
    from portal.outbox import outbox_enqueue
    from portal.tasks import changelog_drain_task

    if not messages:
        return
    ChangeLogMessage.objects.bulk_create([ChangeLogMessage(key=key[:1200], value=value) for key, value in messages])
    outbox_enqueue(changelog_drain_task)


def changelog_drain(*, limit=DRAIN_LIMIT) -> int:
    """Publish pending change log messages in order; returns how many were published (0 when another drainer
    holds the lock or Kafka is off)."""
    if not kafka_configured():
        return 0
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_DRAIN_LOCK])
            if not cursor.fetchone()[0]:
                return 0
        pending = list(ChangeLogMessage.objects.filter(published_at__isnull=True).order_by("id")[:limit])
        if not pending:
            return 0
        topic = change_log_topic()
        reports = kafka_publish_many(topic, [(message.key, value_bytes(message.value)) for message in pending])
        now, stopped, published = timezone.now(), set(), []
        for message, report in zip(pending, reports):
            if isinstance(report, Delivery) and message.key not in stopped:
                message.published_at, message.published_to = now, report.as_json()
                published.append(message)
            else:
                stopped.add(message.key)
                if not isinstance(report, Delivery):
                    logger.warning("change log message %s (%s) not published, kept: %s", message.id, message.key, report)
        ChangeLogMessage.objects.bulk_update(published, ["published_at", "published_to"])
        return len(published)
