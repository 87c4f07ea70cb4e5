"""A bulk load analyzes what it filled (issue 16): `manage.py load_catalog` and an import of at least
BULK_ANALYZE_MIN_ENTITIES entities run ANALYZE on the entity, relation and team link tables in their transaction, so
the planner's row counts match the catalog as soon as it is visible; a small import leaves it to autovacuum."""
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Entity
from catalog.services.catalog_import import catalog_import
from catalog.services.table_statistics import CATALOG_TABLES

pytestmark = pytest.mark.django_db

DOCUMENT = {"blueprints": [{"identifier": "Widget", "title": "Widget", "schema": {"properties": {}}}],
            "entities": [{"blueprint": "Widget", "entity": {"identifier": f"w{i}", "title": f"Widget {i}"}} for i in range(3)]}


def analyzed_tables(queries):
    return [q["sql"].split()[1].strip('"') for q in queries if q["sql"].startswith("ANALYZE")]


def planner_rows(table):
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        return cursor.fetchone()[0]


def test_load_catalog_analyzes_the_tables_it_filled():
    out = StringIO()
    with CaptureQueriesContext(connection) as captured:
        call_command("load_catalog", stdout=out)
    assert analyzed_tables(captured.captured_queries) == list(CATALOG_TABLES)
    assert "Analyzed catalog_entity, catalog_relation, catalog_entity_teams." in out.getvalue()
    # The statistics see the rows the load wrote in its own transaction.
    assert planner_rows("catalog_entity") == Entity.objects.count() == 9


def test_a_small_import_leaves_the_statistics_to_autovacuum(system):
    with CaptureQueriesContext(connection) as captured:
        counts = catalog_import(actor=system, document=DOCUMENT)
    assert counts["entities"] == 3 and counts["analyzed"] == []
    assert analyzed_tables(captured.captured_queries) == []


def test_an_import_at_the_threshold_analyzes(system):
    with CaptureQueriesContext(connection) as captured:
        counts = catalog_import(actor=system, document=DOCUMENT, analyze_min_entities=3)
    assert counts["analyzed"] == list(CATALOG_TABLES)
    assert analyzed_tables(captured.captured_queries) == list(CATALOG_TABLES)
