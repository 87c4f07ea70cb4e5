"""Celery tasks of the catalog (beat: portal/settings.py CELERY_BEAT_SCHEDULE)."""
from celery import shared_task

from catalog.services.scorecards import scorecard_snapshots_take


@shared_task
def scorecard_snapshots_task():
    """Hourly: today's scorecard level counts (the day's last run stands), so a missed hour loses no day."""
    return scorecard_snapshots_take()
