"""portal/prepared_statements.py execute_prepared: a statement prepared once per connection by psycopg, its
parameters bound server-side (never quoted into the text), its results read from the caller's cursor, one logged
statement per execution."""
from datetime import datetime, timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.prepared_statements import array_literal, execute_prepared

pytestmark = pytest.mark.django_db

ECHO = "SELECT %s::text, %s::bigint, %s::bigint[], %s::timestamptz, %s::text IS NULL"


def echo(*params):
    with connection.cursor() as cursor:
        execute_prepared(cursor, "echo_probe", ECHO, list(params))
        return cursor.fetchone()


def prepared_echoes():
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["/* echo_probe */%"])
        return cursor.fetchone()[0]


def test_a_statement_is_prepared_once_and_read_from_the_callers_cursor():
    at = datetime(2026, 12, 5, 8, 0, tzinfo=timezone.utc)
    with CaptureQueriesContext(connection) as captured:
        for n in range(3):
            assert echo("x", n, [1, 2], at, None) == ("x", n, [1, 2], at, True)
    assert len(captured.captured_queries) == 3  # no PREPARE of our own: psycopg's Parse rides along
    assert all(q["sql"].startswith("/* echo_probe */ SELECT") for q in captured.captured_queries)
    assert prepared_echoes() >= 1


@pytest.mark.parametrize("text", ["it's", "back\\slash", "100%", "ünï ☃ 😀", "'; DROP TABLE x; --", "$1", "E'\\x41'"])
def test_parameters_travel_apart_from_the_text(text):
    assert echo(text, 2**62, [], datetime(1, 1, 1, tzinfo=timezone.utc), "") == (
        text, 2**62, [], datetime(1, 1, 1, tzinfo=timezone.utc), False)


def test_the_same_statement_with_integers_of_any_size():
    for value in (0, 7, 70_000, 2**40, -(2**63)):
        assert echo("n", value, [value], None, None)[1:3] == (value, [value])


def test_the_callers_cursor_works_on_after_it():
    with connection.cursor() as cursor:
        execute_prepared(cursor, "echo_probe", ECHO, ["a", 1, [1], None, None])
        assert cursor.fetchone()[0] == "a"
        cursor.execute("SELECT %s || %s", ["b", "c"])
        assert cursor.fetchone() == ("bc",)


def test_a_rollback_forgets_the_statements_and_the_next_execution_prepares_again():
    from django.db import transaction

    assert echo("before", 1, [], None, None)[0] == "before"
    with pytest.raises(RuntimeError), transaction.atomic():
        assert echo("inside", 2, [2], None, None)[0] == "inside"
        raise RuntimeError("a refused write")  # ROLLBACK TO SAVEPOINT: psycopg deallocates what it prepared
    assert echo("after", 3, [3], None, None) == ("after", 3, [3], None, True)
    assert prepared_echoes() == 1


ODD_KEYS = ["plain", "comma,inside", 'double"quote', "back\\slash", "{braces}", " spaced ", "NULL", "", "ünï ☃ 😀",
            "it's", "tab\there", "new\nline"]


@pytest.mark.parametrize("prepared", [True, False])
def test_an_array_literal_reads_back_as_the_list_it_was_made_of(prepared):
    """Strings that mean something in PostgreSQL's array syntax, integers and booleans, through a prepared statement
    (server-side binding) and through Django's client-side one."""
    sql = "SELECT %s::text[], %s::bigint[], %s::boolean[], %s::text[]"
    params = [array_literal(ODD_KEYS), array_literal([1, -2, 2**62]), array_literal([True, False]), array_literal([])]
    with connection.cursor() as cursor:
        if prepared:
            execute_prepared(cursor, "array_literal_probe", sql, params)
        else:
            cursor.execute(sql, params)
        assert cursor.fetchone() == (ODD_KEYS, [1, -2, 2**62], [True, False], [])
