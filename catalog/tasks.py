"""Celery tasks of the catalog (beat: portal/settings.py CELERY_BEAT_SCHEDULE)."""
from celery import shared_task
from django.utils import timezone

from catalog.models import BackstageLocation
from catalog.selectors.backstage import backstage_location_is_due, backstage_locations_due
from catalog.services.backstage import backstage_location_refresh
from catalog.services.scorecards import scorecard_snapshots_take
from portal.actor import Actor


@shared_task
def scorecard_snapshots_task():
    """Hourly: today's scorecard level counts (the day's last run stands), so a missed hour loses no day."""
    return scorecard_snapshots_take()


@shared_task
def aggregates_refresh_task(changed, sources):
    """After a deployment report's commit (outbox): the aggregation values its entities move, and the scorecards
    reading them (catalog/services/aggregations.py aggregates_refresh_after)."""
    from catalog.services.aggregations import aggregates_refresh_after

    return aggregates_refresh_after(actor=Actor.system(), changed=changed, sources=sources)


@shared_task
def entity_indexes_sync_task():
    """After a blueprint change that alters its indexed properties (outbox), and hourly as a repair: the entity
    table's sort indexes in step with the definitions (catalog/services/entity_indexes.py)."""
    from catalog.services.entity_indexes import entity_indexes_sync

    return entity_indexes_sync(actor=Actor.system())


@shared_task
def backstage_location_refresh_task(location_id):
    """Refresh one Backstage location (queued by backstage_locations_refresh_task) if it is still due: a refresh
    longer than beat's minute is queued again meanwhile, and that copy finds it done."""
    location = BackstageLocation.objects.filter(pk=location_id).first()
    if location is not None and backstage_location_is_due(location, timezone.now()):
        backstage_location_refresh(actor=Actor.system(), location=location)


@shared_task
def backstage_locations_refresh_task():
    """Every minute: queue a refresh of each Backstage location whose interval has passed."""
    due = backstage_locations_due(timezone.now())
    for location in due:
        backstage_location_refresh_task.delay(location.pk)
    return len(due)
