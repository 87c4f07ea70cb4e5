"""The health check of a kept database connection (portal/database/base.py): no round trip for a quiet, idle,
healthy connection; Django's `SELECT 1` (and a new connection) for one the server has ended or that is in the middle
of a transaction."""
import select
from unittest import mock

import psycopg
import pytest
from django.db import connections
from django.db.backends.postgresql.base import DatabaseWrapper as DjangoWrapper

from portal.database.base import DatabaseWrapper


@pytest.fixture
def kept():
    """A connection of its own (not the test's transaction), as a web worker keeps it between requests."""
    wrapper = connections.create_connection("default")
    assert isinstance(wrapper, DatabaseWrapper)
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def next_request(wrapper):
    """What Django does at the start of a request: check the kept connection before its first query."""
    wrapper.health_check_done = False
    with mock.patch.object(DjangoWrapper, "is_usable", autospec=True, side_effect=DjangoWrapper.is_usable) as asked:
        wrapper.close_if_health_check_failed()
    return asked.call_count


@pytest.mark.django_db
def test_a_quiet_idle_connection_is_kept_without_asking_the_server(kept):
    raw = kept.connection
    assert next_request(kept) == 0
    assert kept.connection is raw
    with kept.cursor() as cursor:
        cursor.execute("SELECT 41 + 1")
        assert cursor.fetchone() == (42,)


@pytest.mark.django_db
def test_a_connection_whose_backend_was_terminated_is_replaced_before_the_next_query(kept):
    raw, pid = kept.connection, kept.connection.info.backend_pid
    with psycopg.connect(**kept.get_connection_params(), autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
    poller = select.poll()
    poller.register(raw.pgconn.socket, select.POLLIN)
    assert poller.poll(5000), "the server's goodbye did not arrive"
    assert next_request(kept) == 1  # something to read: Django's SELECT 1, which fails
    assert kept.connection is None
    with kept.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


@pytest.mark.django_db
def test_a_connection_left_in_a_transaction_is_asked(kept):
    kept.set_autocommit(False)
    with kept.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert next_request(kept) == 1
    assert kept.connection is not None  # it answered: kept
    kept.rollback()
    kept.set_autocommit(True)
