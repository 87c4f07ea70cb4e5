import os

from celery import Celery
from celery.signals import task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def database_connection_checked(task=None, **kwargs):
    """Before each task, what Django does before each request: a connection that is broken or older than
    CONN_MAX_AGE is closed, and CONN_HEALTH_CHECKS tests the one kept before its next use. With CELERY_DB_REUSE_MAX
    set, Celery no longer opens a connection per task (a new PostgreSQL backend, its role set and its prepared
    statements made again, for every outbox message). Not for a task run eagerly: it is inside its caller's
    transaction."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
