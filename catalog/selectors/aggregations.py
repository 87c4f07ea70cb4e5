"""Aggregation properties (Port's `aggregationProperties`): per entity, one number over the entities of a related
blueprint, computed in SQL for any set of entities at once.

`aggregation_values(blueprint, entity_ids, keys=None) -> {entity id: {key: number | None}}`

What an aggregation reads (the definition is checked by catalog/definitions.py):
    - `target`: the blueprint whose entities are aggregated. They are the target's entities related to the entity
      through relations, at any depth and in either direction the blueprints allow: forwards when this blueprint
      reaches the target through relations (a service counting the packages it depends on), backwards when the
      target reaches this blueprint (a service counting the deployments that point at it), both when both hold.
      The walk passes only through entities of blueprints that lie on such a chain, so it never wanders across the
      catalog; an entity is counted once however many paths lead to it, and never counts itself unless a cycle
      leads back to it. `pathFilter` instead names the chains: each `{path: [relation ids], fromBlueprint}` is
      followed exactly, from this blueprint (the default) or from the target.
    - `query`: a rule set in the search grammar over the target's entities (catalog/selectors/search.py), e.g.
      `{"property": "deployedAt", "operator": "between", "value": {"preset": "lastMonth"}}` for a time window.
      It is the system's view (no reader's permissions): the value is the same for everyone, as Port's is.
    - `calculationSpec`:
        - `{"calculationBy": "entities", "func": "count"}`: how many; 0 when none.
        - `{"calculationBy": "entities", "func": "average", "averageOf": "week", "measureTimeBy": "$createdAt"}`:
          entities per period (hour, day, week, month of 30 days) from the earliest one's time to now, at least one
          period: 3 deployments in the last 2.5 weeks average 1 per week; 0 when none. Entities without a time are
          not counted.
        - `{"calculationBy": "property", "func": "sum" | "min" | "max" | "median" | "average", "property": p}`:
          over the number values of `p` (entities without a number there are left out); `sum` of nothing is 0,
          the others are null. `average` with `averageOf` a period is the sum per period, as above.
    Results are JSON numbers: an int when whole, else a float; null when the exact result is beyond a float's range.
"""
import math
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from catalog.models import Blueprint, Entity, Relation
from catalog.selectors.search import ISO_DATETIME_RE, rules_condition

ENTITY_TABLE = Entity._meta.db_table
RELATION_TABLE = Relation._meta.db_table
PERIOD_SECONDS = {"hour": 3600, "day": 86400, "week": 7 * 86400, "month": 30 * 86400}
PROPERTY_FUNCTIONS = {"sum": "SUM({v})", "min": "MIN({v})", "max": "MAX({v})", "average": "AVG({v})",
                      "median": "percentile_cont(0.5) WITHIN GROUP (ORDER BY {v})"}


def aggregation_values(blueprint, entity_ids, keys=None, *, graph=None):
    """{entity id: {key: value}} for the aggregation properties of `blueprint` (all, or those named in `keys`) of
    the entities `entity_ids` (of that blueprint), in one SQL statement; `graph` (blueprint_graph()) when the
    caller has read it already."""
    definitions = {key: agg for key, agg in (blueprint.aggregation_properties or {}).items()
                   if keys is None or key in keys}
    ids = list(entity_ids)
    values = {entity_id: {} for entity_id in ids}
    if not definitions or not ids:
        return values
    graph = graph or _BlueprintGraph()
    computed = _aggregate_all(blueprint, definitions, ids, graph)
    for key, aggregation in definitions.items():
        for entity_id in ids:
            values[entity_id][key] = computed.get((key, entity_id), _empty(aggregation["calculationSpec"]))
    return values


def blueprint_graph():
    """Every blueprint's relations and aggregations as the aggregation readers need them (one statement): a writer
    that asks several of them reads it once and passes it on."""
    return _BlueprintGraph()


def _empty(spec):
    """The value over no entities: 0 for a count, an average of entities and a sum; null for the others."""
    if spec["calculationBy"] == "entities" or spec["func"] == "sum":
        return 0
    if spec["func"] == "average" and spec.get("averageOf", "total") != "total":
        return 0
    return None


class _BlueprintGraph:
    """Blueprint identifiers and ids, and which blueprints reach which through relations (forwards)."""

    def __init__(self, rows=None):
        """`rows`: (id, identifier, relations, aggregation properties) of every blueprint; read when not given."""
        rows = rows if rows is not None else Blueprint.objects.values_list("id", "identifier", "relations",
                                                                          "aggregation_properties")
        self.ids = {identifier: pk for pk, identifier, _, _ in rows}
        self.aggregations = {identifier: aggregations or {} for _, identifier, _, aggregations in rows}
        self.targets = {identifier: {r["target"] for r in (relations or {}).values() if isinstance(r, dict)}
                        for _, identifier, relations, _ in rows}
        self._reach = {}

    def reachable(self, start):
        """Blueprints reached from `start` by one or more relation hops."""
        if start not in self._reach:
            seen, stack = set(), [start]
            while stack:
                for target in self.targets.get(stack.pop(), ()):
                    if target not in seen:
                        seen.add(target)
                        stack.append(target)
            self._reach[start] = seen
        return self._reach[start]

    def between(self, start, goal):
        """Ids of the blueprints an entity may pass through (or end at) on a chain from `start` to `goal`."""
        return [self.ids[b] for b in self.reachable(start) if b == goal or goal in self.reachable(b)]


def _reach_sql(own, aggregation, graph):
    """SQL (text, params) of the pairs (source_id, entity_id): the entities reached from each source `%(sources)s`."""
    target = aggregation["target"]
    if aggregation.get("pathFilter"):
        parts = [_path_sql(item["path"], forwards=item.get("fromBlueprint", own) == own)
                 for item in aggregation["pathFilter"]]
        return " UNION ".join(text for text, _ in parts), [p for _, params in parts for p in params]
    parts = []
    if target in graph.reachable(own):
        parts.append(_walk_sql("source_id", "target_id", graph.between(own, target)))
    if own in graph.reachable(target):
        parts.append(_walk_sql("target_id", "source_id", graph.between(target, own) + [graph.ids[target]]))
    return " UNION ".join(text for text, _ in parts), [p for _, params in parts for p in params]


def _walk_sql(near, far, blueprint_ids):
    """A recursive walk along relations from `near` to `far` (source_id -> target_id forwards), one hop at least,
    through entities of `blueprint_ids` only; UNION keeps each (source, entity) pair once and ends cycles."""
    text = f"""(WITH RECURSIVE walk(source_id, entity_id) AS (
        SELECT r.{near}, r.{far} FROM {RELATION_TABLE} r JOIN {ENTITY_TABLE} e ON e.id = r.{far}
         WHERE r.{near} = ANY(%s) AND e.blueprint_id = ANY(%s)
        UNION
        SELECT w.source_id, r.{far} FROM walk w JOIN {RELATION_TABLE} r ON r.{near} = w.entity_id
          JOIN {ENTITY_TABLE} e ON e.id = r.{far} WHERE e.blueprint_id = ANY(%s))
      SELECT source_id, entity_id FROM walk)"""
    return text, ["sources", blueprint_ids, blueprint_ids]


def _path_sql(steps, *, forwards):
    """The pairs along exactly the relation ids `steps`: from the source forwards, or (a path given from the target)
    from the source backwards, last step first."""
    hops = list(steps) if forwards else list(reversed(steps))
    near, far = ("source_id", "target_id") if forwards else ("target_id", "source_id")
    joins = [f"JOIN {RELATION_TABLE} r{i} ON r{i}.{near} = r{i - 1}.{far} AND r{i}.relation = %s" for i in range(1, len(hops))]
    text = (f"(SELECT r0.{near} AS source_id, r{len(hops) - 1}.{far} AS entity_id FROM {RELATION_TABLE} r0 "
            f"{' '.join(joins)} WHERE r0.{near} = ANY(%s) AND r0.relation = %s)")
    return text, [*hops[1:], "sources", hops[0]]


def _time_sql(name):
    if name in (None, "$createdAt"):
        return "t.created_at", []
    if name == "$updatedAt":
        return "t.updated_at", []
    return "(CASE WHEN t.properties->>%s ~ %s THEN (t.properties->>%s)::timestamptz END)", [name, ISO_DATETIME_RE, name]


def _value_sql(spec, now):
    """SQL (text, params) of the aggregate over the joined target rows `t`."""
    period = PERIOD_SECONDS.get(spec.get("averageOf"))
    if spec["calculationBy"] == "property":
        prop = spec["property"]
        number = "(CASE WHEN jsonb_typeof(t.properties->%s) = 'number' THEN (t.properties->>%s)::numeric END)"
        if spec["func"] == "average" and period:
            time, time_params = _time_sql(spec.get("measureTimeBy"))
            return (f"COALESCE(SUM({number}), 0) / {_periods(time, period)}",
                    [prop, prop, now, *time_params])
        return PROPERTY_FUNCTIONS[spec["func"]].format(v=number), [prop, prop]
    if spec["func"] == "count":
        return "COUNT(*)", []
    time, time_params = _time_sql(spec.get("measureTimeBy"))
    return f"COUNT({time}) / {_periods(time, period or PERIOD_SECONDS['day'])}", [*time_params, now, *time_params]


def _periods(time, seconds):
    """How many periods from the earliest time to now (at least one), as SQL over `t` (params: now, time's)."""
    return f"GREATEST(1, CEIL(EXTRACT(EPOCH FROM (%s::timestamptz - MIN({time}))) / {seconds}))::numeric"


def _aggregate_query(own, key, aggregation, ids, graph, targets):
    """(SQL, params) of rows (key, source id, value as numeric) of one aggregation property over `ids`. Each reached
    entity is looked up by its id (LATERAL … OFFSET 0: a primary-key probe, with the blueprint and the aggregation's
    `query` tested on the row found outside it, so no guess of the planner's about a blueprint just filled turns
    it into a scan of that blueprint, and the query is not a subquery over every entity of the target)."""
    reach, reach_params = _reach_sql(own.identifier, aggregation, graph)
    reach_params = [ids if p == "sources" else p for p in reach_params]
    value, value_params = _value_sql(aggregation["calculationSpec"], timezone.now())
    where, where_params = "t.blueprint_id = %s", [graph.ids[aggregation["target"]]]
    if aggregation.get("query"):
        condition = rules_condition(aggregation["query"], blueprint=targets[aggregation["target"]])
        if condition is not None:
            condition_sql, condition_params = condition.on("t")
            where, where_params = f"{where} AND {condition_sql}", [*where_params, *condition_params]
    sql = (f"(SELECT %s::text, reach.source_id, ({value})::numeric FROM (SELECT DISTINCT source_id, entity_id "
           f"FROM ({reach}) pairs) reach JOIN LATERAL (SELECT t.id, t.blueprint_id, t.properties, t.created_at, "
           f"t.updated_at FROM {ENTITY_TABLE} t WHERE t.id = reach.entity_id OFFSET 0) t ON TRUE WHERE {where} "
           f"GROUP BY reach.source_id)")
    return sql, [key, *value_params, *reach_params, *where_params]


def _aggregate_all(own, definitions, ids, graph):
    """{(key, source id): value} of every aggregation property in `definitions`, one statement."""
    targets = Blueprint.objects.in_bulk({a["target"] for a in definitions.values() if a.get("query")},
                                        field_name="identifier")  # the definitions their queries compile against
    parts = [_aggregate_query(own, key, aggregation, ids, graph, targets)
             for key, aggregation in sorted(definitions.items())]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(sql for sql, _ in parts), [p for _, params in parts for p in params])
        return {(key, source_id): _json_number(result) for key, source_id, result in cursor.fetchall()}


def _json_number(value):
    if value is None:
        return None
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    number = float(value)
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() and abs(number) < 2 ** 53 else number


def aggregation_dependencies(blueprints):
    """{blueprint identifier: [[blueprint, key], ...]}: for each blueprint, the aggregation properties whose values
    its entities can change — those targeting it, walking through it, or defined on it (its relations change).
    `blueprints`: (identifier, relations, aggregation properties) of every blueprint."""
    graph = _BlueprintGraph([(i, i, relations, aggregations) for i, relations, aggregations in blueprints])
    dependencies = {identifier: [] for identifier, _, _ in blueprints}
    for own, _, aggregations in blueprints:
        for key, aggregation in sorted((aggregations or {}).items()):
            involved = {own, aggregation["target"]}
            for start, goal in ((own, aggregation["target"]), (aggregation["target"], own)):
                if goal in graph.reachable(start):
                    involved |= {b for b in graph.reachable(start) if b == goal or goal in graph.reachable(b)}
            for identifier in sorted(involved):
                if identifier in dependencies:
                    dependencies[identifier].append([own, key])
    return dependencies


def aggregation_sources(blueprint, entity_ids, *, graph=None):
    """{blueprint identifier: {entity id}}: the entities whose aggregation values may change when entities
    `entity_ids` of `blueprint` change (their properties, relations or existence): each aggregation listed in the
    blueprint's `aggregated_by`, walked backwards from them. Call it before and after a change: a path the change
    removes is seen before, one it adds after. One statement (none when nothing aggregates over the blueprint)."""
    return aggregation_sources_of([(blueprint, entity_ids)], graph=graph)


def aggregation_sources_of(changes, *, graph=None):
    """`aggregation_sources` of several changes at once ([(blueprint, entity ids)]), in one statement: the walks
    of every aggregation over them, each distinct walk once (two aggregations along the same path, as a count and a
    count of failures, walk it once)."""
    walks, sources = {}, {}
    for blueprint, entity_ids in changes:
        ids = list(entity_ids)
        if not blueprint.aggregated_by or not ids:
            continue
        graph = graph or _BlueprintGraph()
        for own, key in blueprint.aggregated_by:
            if own == blueprint.identifier:
                sources.setdefault(own, set()).update(ids)
            aggregation = graph.aggregations.get(own, {}).get(key)
            if aggregation is None or own not in graph.ids:
                continue
            target = aggregation["target"]
            parts = []
            if target in graph.reachable(own):  # sources reach targets forwards: walk back along incoming edges
                parts.append(_walk_sql("target_id", "source_id", graph.between(own, target) + [graph.ids[own]]))
            if own in graph.reachable(target):  # targets reach sources: walk forwards from the changed entities
                parts.append(_walk_sql("source_id", "target_id", graph.between(target, own)))
            text = " UNION ".join(t for t, _ in parts)
            params = [ids if p == "sources" else p for _, ps in parts for p in ps]
            walks.setdefault((own, text, repr(params)), (own, text, params))
    if walks:
        queries = [(f"(SELECT DISTINCT %s::text, w.entity_id FROM ({text}) w JOIN {ENTITY_TABLE} e ON e.id = w.entity_id "
                    f"WHERE e.blueprint_id = %s)", [own, *params, graph.ids[own]]) for own, text, params in walks.values()]
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(sql for sql, _ in queries), [p for _, ps in queries for p in ps])
            for own, entity_id in cursor.fetchall():
                sources.setdefault(own, set()).add(entity_id)
    return {own: found for own, found in sources.items() if found}
