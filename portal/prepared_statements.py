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
import json
import re

from django.db import connection, models

_PLACEHOLDER = re.compile(r"%s")


def execute_prepared(cursor, label, sql, params, *, generic_plan=None):
    """Execute `sql` (positional `%s` placeholders only, no literal `%`) with `params` on Django `cursor` through a
    statement prepared on its connection, preparing it first if this connection has not. `label` (an identifier)
    starts the statement's name, so a query log says what `EXECUTE <name>(...)` ran.

    `generic_plan`: True plans it once for every parameter (plan_cache_mode force_generic_plan), for a statement
    whose best plan does not depend on them but whose generic plan PostgreSQL misjudges, so that it would plan it
    afresh at every execution; False leaves the choice to PostgreSQL (`auto`), for one whose best plan does depend on
    them (how selective a searched value is); None runs under whichever is set. The mode is set on the
    session only when it must change (Django's cursors bind client-side, so it bears on these statements alone); a
    wrong belief about it (a SET rolled back with its transaction) costs time, never results."""
    name = f"{label}_" + hashlib.blake2b(sql.encode(), digest_size=8).hexdigest()
    raw = cursor.db.connection
    if generic_plan is not None:
        mode = "force_generic_plan" if generic_plan else "auto"
        if getattr(raw, "_portal_plan_mode", "auto") != mode:
            cursor.execute(f"SET plan_cache_mode = {mode}")
            raw._portal_plan_mode = mode
    prepared = getattr(raw, "_portal_prepared", None)
    if prepared is None:
        prepared = raw._portal_prepared = set()
    if name not in prepared:
        numbers = iter(range(1, len(params) + 1))
        cursor.execute(f"PREPARE {name} AS {_PLACEHOLDER.sub(lambda _: f'${next(numbers)}', sql)}")
        prepared.add(name)
    cursor.execute(f"EXECUTE {name}({', '.join(['%s'] * len(params))})" if params else f"EXECUTE {name}", params)


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


def select_prepared(label, model, where, params, *, order_by):
    """The `model` rows `where` (SQL over its columns, `%s` placeholders for `params`) says, ordered by `order_by`, as
    model instances (every concrete field, JSON ones parsed), through a statement prepared once per connection: a
    worker's per-message lookups without the ORM building the same query every time."""
    fields = model._meta.concrete_fields
    parsed = [isinstance(field, models.JSONField) for field in fields]
    columns = ", ".join(f'"{field.column}"::text' if json_field else f'"{field.column}"'
                        for field, json_field in zip(fields, parsed))
    sql = f'SELECT {columns} FROM "{model._meta.db_table}" WHERE {where} ORDER BY {order_by}'
    with connection.cursor() as cursor:
        execute_prepared(cursor, label, sql, params, generic_plan=True)
        rows = cursor.fetchall()
    names = [field.attname for field in fields]
    return [model.from_db(connection.alias, names, [json.loads(value) if json_field and value is not None else value
                                                    for value, json_field in zip(row, parsed)])
            for row in rows]
