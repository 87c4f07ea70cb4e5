"""Statements of the hottest reads and writes, prepared once per database connection.

PostgreSQL spends longer planning the entity document statement (a recursive walk of mirror paths, a handful of
aggregating subqueries) than running it: about 1 ms of planning for 0.2 ms of work. Prepared, the plan is made on
the connection's first executions and reused (PostgreSQL's generic plan after five custom ones), and the statement
stays in Django's cursor, so it is logged and counted like any other. Its parameters travel apart from its text
(server-side binding): nothing is quoted into SQL in Python, and the server parses the text once.

psycopg keeps what it prepared per connection (the 100 most recent statements, the older deallocated), so a new
connection starts with none. A ROLLBACK (a refused write, a retried conflict) makes psycopg forget them all and
deallocate them, as a rolled-back DDL may have changed what they name: the connection's next executions prepare and
plan them again (the old `PREPARE`/`EXECUTE` text survived rollbacks, but quoted every parameter into the text in
Python, 14% of a web worker's CPU during deployment reports). This needs a session of its own per connection, as
the portal has (direct connections, or a pooler in session mode, not transaction mode), and nothing that runs
DISCARD ALL / DEALLOCATE ALL on it behind psycopg's back (a pool `reset` doing so).
"""
import json
from functools import cache

from django.db import connection
from django.db.backends.postgresql.base import ServerBindingCursor


def execute_prepared(cursor, label, sql, params, *, generic_plan=None):
    """Execute `sql` (positional `%s` placeholders only, no literal `%`) with `params` on Django `cursor` as a statement
    prepared on its connection: the cursor binds server-side (Django's ServerBindingCursor in place of its client-side
    one, results read from `cursor` as usual), and psycopg prepares the statement on its first execution on the
    connection (`prepare_threshold` 0, which client-side cursors ignore), then sends only the parameters, each as it is,
    not quoted into the text. `label` (an identifier) heads the statement as a comment, so a query log says what ran.

    `generic_plan`: True plans it once for every parameter (plan_cache_mode force_generic_plan), for a statement
    whose best plan does not depend on them but whose generic plan PostgreSQL misjudges, so that it would plan it
    afresh at every execution; False leaves the choice to PostgreSQL (`auto`), for one whose best plan does depend on
    them (how selective a searched value is); None runs under whichever is set. The mode is set on the
    session only when it must change (Django's other cursors bind client-side, so it bears on these statements
    alone); a wrong belief about it (a SET rolled back with its transaction) costs time, never results."""
    raw = cursor.db.connection
    if generic_plan is not None:
        mode = "force_generic_plan" if generic_plan else "auto"
        if getattr(raw, "_portal_plan_mode", "auto") != mode:
            cursor.execute(f"SET plan_cache_mode = {mode}")
            raw._portal_plan_mode = mode
    if not isinstance(cursor.cursor, ServerBindingCursor):
        client, cursor.cursor = cursor.cursor, ServerBindingCursor(raw)
        client.close()
    if raw.prepare_threshold != 0:
        raw.prepare_threshold = 0
    cursor.execute(f"/* {label} */ {sql}", params)


def array_literal(values):
    """PostgreSQL's text form of the one-dimensional array of `values` (strings, integers or booleans; no None), for a
    `%s::text[]` (`::bigint[]`, `::boolean[]`) parameter: sent as one string, which psycopg passes as it is, where a
    Python list goes through its list dumper element by element (about 11 µs an array of a few keys, several to a
    page statement)."""
    return "{" + ",".join(("t" if value else "f") if isinstance(value, bool) else
                          str(value) if isinstance(value, int) else
                          '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values) + "}"


def insert_prepared(label, sql, rows, instances):
    """Insert `rows` (JSON-able dicts, one per model instance of `instances`, in order) through `sql`, an INSERT
    that takes them as one jsonb array (`jsonb_to_recordset(%s::jsonb)`) and RETURNING their ids in order, prepared
    once per connection: one string to send, parsed by the server, not an array per column that client-side binding
    escapes element by element. Each instance gets its id, saved as the ORM's bulk_create would leave it."""
    with connection.cursor() as cursor:
        execute_prepared(cursor, label, sql, [json.dumps(rows)], generic_plan=True)
        ids = [row[0] for row in cursor.fetchall()]
    for instance, pk in zip(instances, ids):
        instance.pk = pk
        instance._state.adding, instance._state.db = False, connection.alias


@cache
def model_columns(model, alias):
    """(select list `alias.col AS alias_col`, field attnames, converters) of `model`'s concrete fields, JSON
    columns as text: what `model_from_row` needs to build the instance the ORM would have."""
    fields = model._meta.concrete_fields
    columns = ", ".join(f'{alias}."{f.column}"{"::text" if f.get_internal_type() == "JSONField" else ""} AS {alias}_{f.column}'
                        for f in fields)
    converters = [(lambda value, field=f: field.from_db_value(value, None, connection))
                  if f.get_internal_type() == "JSONField" else None for f in fields]
    return columns, [f.attname for f in fields], converters


def model_from_row(model, alias, values):
    """The instance the ORM would have built from a row of `model_columns(model, alias)`."""
    _, names, converters = model_columns(model, alias)
    return model.from_db(connection.alias, names, [convert(v) if convert else v for convert, v in zip(converters, values)])


def select_prepared(label, model, where, params, *, order_by):
    """The `model` rows `where` (SQL over its columns, `%s` placeholders for `params`) says, ordered by `order_by`, as
    model instances (`model_from_row`), through a statement prepared once per connection: a worker's per-message
    lookups without the ORM building the same query every time."""
    columns, _, _ = model_columns(model, "m")
    with connection.cursor() as cursor:
        execute_prepared(cursor, label, f'SELECT {columns} FROM "{model._meta.db_table}" m WHERE {where} '
                                        f"ORDER BY {order_by}", params, generic_plan=True)
        rows = cursor.fetchall()
    return [model_from_row(model, "m", row) for row in rows]
