"""Celery tasks of the portal kernel: the outbox's delivery, sweep and purge (portal/outbox.py)."""
from celery import shared_task


@shared_task(name="portal.outbox_deliver", ignore_result=True)
def outbox_deliver_task(message_id, *carried_ids):
    """Deliver `message_id`; a grouped publish (portal/outbox.py outbox_publish_many) also carries the other
    messages of its transaction, published here first, each on its own."""
    from portal.outbox import outbox_deliver, outbox_publish_carried

    if carried_ids:
        outbox_publish_carried(carried_ids)
    return outbox_deliver(message_id=message_id)


@shared_task(name="portal.outbox_sweep", ignore_result=True)
def outbox_sweep_task():
    """Beat, every OUTBOX_SWEEP_SECONDS: publish again what is due and not held by a live worker."""
    from portal.outbox import outbox_sweep

    return outbox_sweep()


@shared_task(name="portal.outbox_purge", ignore_result=True)
def outbox_purge_task():
    """Beat, hourly: forget messages done more than OUTBOX_KEEP_DONE_DAYS ago."""
    from portal.outbox import outbox_purge

    return outbox_purge()


@shared_task(name="portal.changelog_drain", ignore_result=True)
def changelog_drain_task():
    """After a change committed, and from beat every 5 s: publish the change log's pending messages in order."""
    from portal.changelog import changelog_drain

    return changelog_drain()
