"""Which scorecard rules entities pass, computed in one query for all of a blueprint's scorecards.

Every entity write of a blueprint with scorecards runs that query for the written entity, so the rules compiled
to SQL are kept per process for the same blueprint definition (its `version`) and scorecards, unless they read
the clock or another blueprint's definition (then they are compiled each time)."""
import json

from django.db import connection
from django.db.models import Value

from catalog.models import Entity
from catalog.scorecards import scorecard_rule_set
from catalog.selectors.search import rules_conditions
from portal.kept import KeptValues
from portal.prepared_statements import execute_prepared

_compiled = KeptValues(64)  # (blueprint pk, version, scorecards as JSON) -> (columns, conditions, (sql, params))


def _columns(scorecards):
    """{annotation name: (scorecard identifier, rule identifier or None for the filter, query or None)}."""
    columns = {}
    for s, scorecard in enumerate(scorecards):
        columns[f"f{s}"] = (scorecard["identifier"], None, scorecard["filter"])
        for r, rule in enumerate(scorecard["rules"]):
            columns[f"r{s}_{r}"] = (scorecard["identifier"], rule["identifier"], rule["query"])
    return columns


def _compiled_for(blueprint, scorecards):
    """(columns, conditions, SQL and params of the query over all the blueprint's entities or None, whether it is
    kept) for `scorecards`, compiled or kept."""
    key = (blueprint.pk, blueprint.version, json.dumps(scorecards, sort_keys=True))
    kept = _compiled.get(key)
    if kept is not None:
        return (*kept, True)
    columns = _columns(scorecards)
    queried = [name for name, (_, _, query) in columns.items() if query]
    compiled, reusable = rules_conditions([scorecard_rule_set(columns[name][2]) for name in queried],
                                          blueprint=blueprint)
    conditions = dict.fromkeys(columns) | dict(zip(queried, compiled))
    sql = _annotated(blueprint, conditions).order_by().values_list("pk", *columns).query.sql_with_params()
    kept = reusable and blueprint.pk is not None
    if kept:
        _compiled.put(key, (columns, conditions, sql))
    return columns, conditions, sql, kept


def _annotated(blueprint, conditions):
    return Entity.objects.filter(blueprint=blueprint).annotate(
        **{name: condition if condition is not None else Value(True) for name, condition in conditions.items()})


def scorecard_conditions(blueprint, scorecards):
    """{annotation name: condition, or None where every entity passes} of the rules and filters of `scorecards`."""
    return _compiled_for(blueprint, scorecards)[1]


def _rows(blueprint, scorecards, entity_ids):
    """(columns, rows (entity id, *one boolean per column)) of the entities (`entity_ids`, or all the blueprint's)."""
    columns, _, (sql, params), kept = _compiled_for(blueprint, scorecards)
    if entity_ids is None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return columns, cursor.fetchall()
    # The kept SQL of the whole blueprint, narrowed by id: PostgreSQL pulls the condition into the subquery, so only
    # the entities named are read (through the primary key), and no ORM query is compiled per write. Kept, it is
    # also prepared on the connection: planning its column per rule cost more than running it for one entity.
    narrowed, values = f"SELECT * FROM ({sql}) AS scored WHERE scored.pk = ANY(%s)", [*params, list(entity_ids)]
    with connection.cursor() as cursor:
        if kept:
            execute_prepared(cursor, "scorecard_rows", narrowed, values, generic_plan=True)
        else:
            cursor.execute(narrowed, values)
        return columns, cursor.fetchall()


def scorecard_passes(blueprint, entity_ids=None, scorecards=None):
    """{entity id: {scorecard identifier: {rule identifier: passed}}} for the entities (`entity_ids`, or all of the
    blueprint's) each scorecard applies to, over `scorecards` (default: all of the blueprint's): one query, each
    filter and rule a boolean column, as the system sees the entities."""
    scorecards = blueprint.scorecards if scorecards is None else scorecards
    if not scorecards:
        return {}
    columns, rows = _rows(blueprint, scorecards, entity_ids)
    passes = {}
    for pk, *values in rows:
        standing = passes.setdefault(pk, {})
        for (scorecard, rule, _), value in zip(columns.values(), values):
            if rule is None:
                if value:
                    standing[scorecard] = {}
            elif scorecard in standing:
                standing[scorecard][rule] = bool(value)
    return passes
