"""The planner's statistics of the catalog's tables, refreshed right after a bulk load (issue 16).

Autovacuum analyzes a table only some time after it changed a lot; until then the planner believes the freshly
loaded tables are as small as before and picks plans that were 3–6x slower at 50,000 entities (list 46.9 ms
instead of ~15 ms). A bulk load therefore runs ANALYZE on the tables it filled, in its own transaction, so the
statistics commit with the rows (ANALYZE samples the rows its own transaction wrote). ANALYZE needs the
tables' owner: it runs as the role the portal logs in with, not the app's role (audit/database_role.py).
"""
from django.db import connection

from audit.database_role import database_owner

# What a load of entities fills: the entities, their relations and their teams.
CATALOG_TABLES = ("catalog_entity", "catalog_relation", "catalog_entity_teams")
# An import that writes at least this many entities analyzes (a handful of rows changes no plan).
BULK_ANALYZE_MIN_ENTITIES = 500


def catalog_tables_analyze(tables=CATALOG_TABLES):
    """ANALYZE each table (as the owner); returns the tables analyzed."""
    with database_owner(connection), connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
    return list(tables)
