"""Celery tasks of the catalog (beat: portal/settings.py CELERY_BEAT_SCHEDULE)."""
from celery import shared_task

from catalog.services.scorecards import scorecard_snapshots_take


@shared_task
def scorecard_snapshots_task():
    """Hourly: today's scorecard level counts (the day's last run stands), so a missed hour loses no day."""
    return scorecard_snapshots_take()


@shared_task
def entity_indexes_sync_task():
    """After a blueprint change that alters its indexed properties (outbox), and hourly as a repair: the entity
    table's sort indexes in step with the definitions (catalog/services/entity_indexes.py)."""
    from catalog.services.entity_indexes import entity_indexes_sync
    from portal.actor import Actor

    return entity_indexes_sync(actor=Actor.system())
