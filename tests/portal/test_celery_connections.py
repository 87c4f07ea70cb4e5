"""The worker keeps its database connection between tasks (portal/celery.py, CELERY_DB_REUSE_MAX), checked before
each task as Django checks it before each request."""
import time
from types import SimpleNamespace

import pytest
from django.db import connection

from portal.celery import app, database_connection_checked


def test_celery_reuses_the_connection_instead_of_opening_one_per_task(settings):
    assert settings.CELERY_DB_REUSE_MAX >= 100
    assert app.conf.get("CELERY_DB_REUSE_MAX") == settings.CELERY_DB_REUSE_MAX  # what Celery's Django fixup reads


@pytest.mark.django_db(transaction=True)
def test_before_a_task_a_connection_past_its_age_is_closed_and_a_fresh_one_kept():
    queued = SimpleNamespace(request=SimpleNamespace(is_eager=False))
    connection.ensure_connection()
    kept = connection.connection
    connection.close_at = time.monotonic() + 60  # as CONN_MAX_AGE (60 s) leaves a connection just opened
    database_connection_checked(task=queued)
    assert connection.connection is kept
    connection.close_at = time.monotonic() - 1
    database_connection_checked(task=queued)
    assert connection.connection is None  # the next query opens a new one
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


@pytest.mark.django_db
def test_an_eager_task_leaves_its_callers_transaction_alone():
    connection.ensure_connection()
    kept = connection.connection
    connection.close_at = time.monotonic() - 1
    database_connection_checked(task=SimpleNamespace(request=SimpleNamespace(is_eager=True)))
    assert connection.connection is kept and connection.in_atomic_block
