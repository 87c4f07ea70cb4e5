"""Statements of the hottest reads, prepared once per database connection (PREPARE, then EXECUTE).

PostgreSQL spends longer planning the entity document statement (a recursive walk of mirror paths, a handful of
aggregating subqueries) than running it: about 1 ms of planning for 0.2 ms of work. Prepared, the plan is made on
the connection's first executions and reused (PostgreSQL's generic plan after five custom ones), and the statement
stays in Django's cursor, so it is logged and counted like any other.

A prepared statement lives as long as its session (a ROLLBACK does not drop it), so the names prepared are kept
on the DB-API connection object itself: a new connection starts with none. The name is a digest of the text, so
a changed statement (another column list after a migration) is prepared under a new name. This needs a session
of its own per connection, as the portal has (direct connections, or a pooler in session mode, not transaction
mode), and nothing that runs DISCARD ALL / DEALLOCATE ALL on it behind Django's back (a pool `reset` doing so).
"""
import hashlib
import re

_PLACEHOLDER = re.compile(r"%s")


def execute_prepared(cursor, label, sql, params):
    """Execute `sql` (positional `%s` placeholders only, no literal `%`) with `params` on Django `cursor` through a
    statement prepared on its connection, preparing it first if this connection has not. `label` (an identifier)
    starts the statement's name, so a query log says what `EXECUTE <name>(...)` ran."""
    name = f"{label}_" + hashlib.blake2b(sql.encode(), digest_size=8).hexdigest()
    raw = cursor.db.connection
    prepared = getattr(raw, "_portal_prepared", None)
    if prepared is None:
        prepared = raw._portal_prepared = set()
    if name not in prepared:
        numbers = iter(range(1, len(params) + 1))
        cursor.execute(f"PREPARE {name} AS {_PLACEHOLDER.sub(lambda _: f'${next(numbers)}', sql)}")
        prepared.add(name)
    cursor.execute(f"EXECUTE {name}({', '.join(['%s'] * len(params))})" if params else f"EXECUTE {name}", params)
