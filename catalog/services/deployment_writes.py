"""The writes of a CI deployment report (catalog/services/deployments.py), purpose-built for its two entities.

The generic entity write path (entities.py) costs about fifteen statements per entity, for inputs a report never
has (many entities, teams, stubs, permission per entity). A report writes one running service (created or merged
into) and one new deployment, so, in the report's transaction and in row_locks.py's order: the Component, then
the environment and the running service, locked and read (the latter with their relations and teams) in one
statement of two sorted passes (`entity_rows_read_passes`, called by deployments.py); the running service updated
in one, or inserted in one (INSERT … ON CONFLICT DO NOTHING, so one an entity API write created meanwhile is
locked and merged into); the deployment inserted together with
every new relation row in one; the audit rows in one bulk insert (`audit_record_many`, sealed into the chain by
beat's sealer, not while CI waits); one ENTITY_CHANGED announcement of both changes (the automations' events and the
aggregation refresh queued as outbox rows in one INSERT, `outbox_batch`, published together after the commit). The
hot statements are prepared once per connection (portal/prepared_statements.py).
Inputs are validated by the generic path's own functions (`entity_write_prepare`: the blueprints' JSON schemas, defaults,
required relations, merge rules) and audited and announced with the same snapshots, so a report reads in the
audit log and to automations as the generic writes did. Six statements in all after the blueprints' lock, one more
(the outbox INSERT) when automations listen or something aggregates over them (tests/catalog/
test_deployment_statements.py), and none after the commit but one publish to the broker.

The written entities' own scorecards are evaluated in the transaction, as the generic path does, at no cost when
they have none (the starter's case). The aggregation values the report moves (the starter's Component counts its
deployments) are refreshed after the commit, by the worker (catalog/services/aggregations.py
`aggregates_refresh_queue`: one outbox row in the report's transaction), with the scorecards reading them; only a
report that changes a running service's relations walks, in the transaction, what they reached before.
"""
import json

from django.db import connection
from django.utils import timezone

from audit import choices as audit_choices
from audit.services import audit_event_build, audit_record_many
from catalog.models import Entity, Relation, Team
from catalog.selectors.aggregations import aggregation_sources_of
from catalog.services.aggregations import aggregates_refresh_queue
from catalog.services.entities import (CREATE, UPSERT_MERGE, EntityWrite, entity_stored_json, entity_timer_values,
                                       entity_timers_sync, entity_write_prepare, entity_write_unchanged,
                                       snapshot_with_standings)
from catalog.services.row_locks import NO_KEY_UPDATE
from catalog.services.scorecards import scorecards_evaluate
from portal import events
from portal.errors import Conflict, NotFound
from portal.outbox import outbox_batch
from portal.prepared_statements import execute_prepared

ENTITY_TABLE, RELATION_TABLE, TEAM_TABLE = Entity._meta.db_table, Relation._meta.db_table, Team._meta.db_table
ENTITY_TEAMS_TABLE = Entity.teams.through._meta.db_table
ROW_COLUMNS = ("id", "title", "icon", "properties", "created_at", "created_by", "run_id", "aggregates", "is_stub",
               "datasource")
# Its relations (relation, target identifier, target id, position, row id) and team names come with the row.
RELATED_COLUMNS = f"""
    (SELECT coalesce(json_agg(json_build_array(r.relation, t.identifier, t.id, r.position, r.id)
                              ORDER BY r.position, r.id), '[]')
       FROM {RELATION_TABLE} r JOIN {ENTITY_TABLE} t ON t.id = r.target_id WHERE r.source_id = e.id),
    (SELECT coalesce(json_agg(tm.name ORDER BY tm.name COLLATE "C"), '[]')
       FROM {ENTITY_TEAMS_TABLE} et JOIN {TEAM_TABLE} tm ON tm.id = et.team_id WHERE et.entity_id = e.id)"""


def _json(value):
    """A json/jsonb column as Python (the backend hands raw json back as text)."""
    return json.loads(value) if isinstance(value, str) else value


def entity_rows_read(keys, strength, *, blueprints, related=False):
    """Lock the entity rows of `keys` ((blueprint identifier, identifier)) FOR `strength` in one statement, in
    sorted key order (a step-4 pass of row_locks.py: callers keep to its order), and read them: {key: a dict of
    ROW_COLUMNS, with `relations` and `teams` when `related`}; a key with no entity is absent."""
    return entity_rows_read_passes([(keys, strength, related)], blueprints=blueprints)[0]


def entity_rows_read_passes(passes, *, blueprints):
    """`entity_rows_read` of each pass ((keys, strength, related)) in one statement, the passes locked one after
    the other in the order given (each its keys in sorted order; callers keep row_locks.py's order across them,
    e.g. the Component FOR KEY SHARE before the environment and running service FOR NO KEY UPDATE)."""
    ctes, arms, params, sorted_keys = [], [], [], []
    for number, (keys, strength, related) in enumerate(passes):
        keys = sorted(set(keys))
        sorted_keys.append(keys)
        columns = ", ".join(f"e.{c}" for c in ROW_COLUMNS) + (
            "," + RELATED_COLUMNS if related else ", NULL::json, NULL::json")
        ctes.append(f"p{number} AS (SELECT k.position, {columns} FROM unnest(%s::bigint[], %s::text[]) WITH ORDINALITY "
                    f"AS k(blueprint_id, identifier, position) JOIN {ENTITY_TABLE} e "
                    f"ON e.blueprint_id = k.blueprint_id AND e.identifier = k.identifier "
                    f"ORDER BY k.position FOR {strength} OF e)")
        arms.append(f"SELECT {number}, * FROM p{number}")  # UNION ALL reads the passes in order
        params += [[blueprints[bp].pk for bp, _ in keys], [identifier for _, identifier in keys]]
    with connection.cursor() as cursor:
        execute_prepared(cursor, "entity_rows_read", f"WITH {', '.join(ctes)} {' UNION ALL '.join(arms)}", params,
                         generic_plan=True)
        found = cursor.fetchall()
    read = [{} for _ in passes]
    for number, position, *values in found:
        row = read[number][sorted_keys[number][position - 1]] = dict(zip(ROW_COLUMNS, values))
        row["properties"], row["aggregates"] = _json(row["properties"]) or {}, _json(row["aggregates"])
        if passes[number][2]:
            row["relations"], row["teams"] = _json(values[len(ROW_COLUMNS)]), _json(values[len(ROW_COLUMNS) + 1])
    return read


def _entity(blueprint, identifier, row):
    return Entity(pk=row["id"], blueprint=blueprint, identifier=identifier, title=row["title"], icon=row["icon"],
                  properties=row["properties"], created_at=row["created_at"], created_by=row["created_by"],
                  run_id=row["run_id"], aggregates=row["aggregates"], is_stub=row["is_stub"], datasource=row["datasource"])


def _prepared(blueprint, data, row, mode):
    """The write of `data` onto `row` (None: a new entity), validated and merged by the generic path's rules."""
    write = EntityWrite(index=0, data=data, identifier=data["identifier"])
    relations, teams = {}, []
    if row is not None:
        write.existing = _entity(blueprint, data["identifier"], row)
        for relation, target, _target_id, _position, _row_id in row["relations"]:
            relations.setdefault(relation, []).append(target)
        teams = row["teams"]
        write.before = entity_stored_json(blueprint, write.identifier, row["title"], row["icon"], row["properties"],
                                    relations, teams)
    entity_write_prepare(write, blueprint, mode, relations, teams)
    write.after = entity_stored_json(blueprint, write.identifier, write.title, write.icon, write.properties, write.relations,
                               write.teams)
    return write


INSERT_SQL = f"""INSERT INTO {ENTITY_TABLE} (blueprint_id, identifier, title, icon, properties, created_at, updated_at,
                                        created_by, updated_by, run_id, is_stub, datasource)
            VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, '', false, %s)
            ON CONFLICT (blueprint_id, identifier) DO NOTHING RETURNING id"""


def _insert_params(blueprint, write, actor, now):
    return [blueprint.pk, write.identifier, write.title, write.icon, json.dumps(write.properties), now, now,
            actor.label, actor.label, actor.datasource]


def _inserted(blueprint, write, actor, now, found):
    """`write.entity` as INSERT_SQL stored it (`found`: its RETURNING row); None when another transaction had
    created it meanwhile (ON CONFLICT DO NOTHING returned nothing)."""
    if found is None:
        return None
    write.entity = Entity(pk=found[0], blueprint=blueprint, identifier=write.identifier, title=write.title, icon=write.icon,
                          properties=write.properties, created_at=now, created_by=actor.label, run_id="",
                          is_stub=False, datasource=actor.datasource)
    write.entity.updated_at, write.entity.updated_by = now, actor.label
    return write.entity


def _insert(blueprint, write, actor, now):
    """Insert the new entity of `write`; the entity, or None when another transaction created it meanwhile."""
    with connection.cursor() as cursor:
        cursor.execute(INSERT_SQL, _insert_params(blueprint, write, actor, now))
        return _inserted(blueprint, write, actor, now, cursor.fetchone())


def _insert_with_relations(blueprint, write, actor, now, own_edges, other_edges):
    """Insert the new entity of `write` with its relation rows (`own_edges`: {(relation, target id): position}) and
    other sources' new relation rows (`other_edges`: [(source id, relation, target id, position)]), one statement."""
    own, other = list(own_edges.items()), list(other_edges)
    with connection.cursor() as cursor:
        execute_prepared(
            cursor, "entity_insert_with_relations",
            f"""WITH new AS ({INSERT_SQL}),
                     edges AS (
                       INSERT INTO {RELATION_TABLE} (source_id, relation, target_id, position)
                       SELECT new.id, k.relation, k.target_id, k.position
                         FROM new, unnest(%s::text[], %s::bigint[], %s::smallint[]) AS k(relation, target_id, position)
                       UNION ALL
                       SELECT k.source_id, k.relation, k.target_id, k.position
                         FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::smallint[])
                              AS k(source_id, relation, target_id, position))
                SELECT id FROM new""",
            [*_insert_params(blueprint, write, actor, now),
             [key for (key, _), _ in own], [target for (_, target), _ in own], [position for _, position in own],
             [e[0] for e in other], [e[1] for e in other], [e[2] for e in other], [e[3] for e in other]],
            generic_plan=True)
        return _inserted(blueprint, write, actor, now, cursor.fetchone())


def _update(write, actor, now):
    entity = write.entity = write.existing
    entity.title, entity.icon, entity.properties = write.title, write.icon, write.properties
    entity.updated_by, entity.updated_at, entity.is_stub, entity.datasource = actor.label, now, False, actor.datasource
    with connection.cursor() as cursor:
        execute_prepared(cursor, "entity_update",
                         f"UPDATE {ENTITY_TABLE} SET title = %s, icon = %s, properties = %s::jsonb, updated_by = %s, "
                         f"updated_at = %s, is_stub = false, datasource = %s WHERE id = %s",
                         [entity.title, entity.icon, json.dumps(entity.properties), actor.label, now, actor.datasource,
                          entity.pk], generic_plan=True)


def _edges(blueprint, write, row, target_ids):
    """({(relation, target id): position} the write's relations should be, {(relation, target id): (position, row id)}
    they are). A kept edge's target is known from the row; a new one's must be among `target_ids` (locked)."""
    current, kept = {}, {}
    for relation, target, target_id, position, row_id in (row["relations"] if row is not None else []):
        current[(relation, target_id)] = (position, row_id)
        kept[(relation, target)] = target_id
    wanted = {}
    for key, targets in write.relations.items():
        bp_identifier = blueprint.relations[key]["target"]
        for position, target in enumerate(targets):
            target_id = kept.get((key, target)) or target_ids.get((bp_identifier, target))
            if target_id is None:
                raise NotFound(f"target entity {target!r} of blueprint {bp_identifier!r} does not exist "
                               "(create it first, or pass create_missing_related_entities=true)", path=f"relations.{key}")
            wanted[(key, target_id)] = position
    return wanted, current


def _timers_keep(blueprint, write):
    """Timers follow the timer properties; only when their values change (they are kept in step by every writer)."""
    before = entity_timer_values(blueprint, write.existing.properties) if write.existing is not None else {}
    if entity_timer_values(blueprint, write.properties) != before:
        entity_timers_sync(blueprint, [write])


def deployment_report_write(*, actor, blueprints, running, running_row, deployment, target_ids, refuse_locked):
    """Write a report's running service (`running`: entity JSON merged into `running_row`, the one there as locked
    and read by `entity_rows_read(..., related=True)`, or created when None) and its new deployment (`deployment`,
    related to it), in the caller's transaction, after the caller locked the blueprints (`blueprints`, FOR SHARE, as
    stored now) and the relation targets (`target_ids`: {(blueprint identifier, identifier): id}).
    `refuse_locked(properties)` raises when a running service created meanwhile is locked. Returns (deployment
    entity, running service entity)."""
    rs_bp, dep_bp = blueprints[running.pop("blueprint")], blueprints[deployment.pop("blueprint")]
    rs_key, row = (rs_bp.identifier, running["identifier"]), running_row
    now = timezone.now()
    rs_write = _prepared(rs_bp, running, row, UPSERT_MERGE)
    dep_write = _prepared(dep_bp, deployment, None, CREATE)
    if row is None and _insert(rs_bp, rs_write, actor, now) is None:
        # Created meanwhile by an entity API write: merged into, as the generic path's upsert would.
        row = entity_rows_read([rs_key], NO_KEY_UPDATE, blueprints=blueprints, related=True)[rs_key]
        refuse_locked(row["properties"])
        rs_write = _prepared(rs_bp, running, row, UPSERT_MERGE)
    rs_written = not entity_write_unchanged(rs_write, actor, "")
    if rs_written and row is not None:
        _update(rs_write, actor, now)
    elif not rs_written:
        rs_write.entity = rs_write.existing
    rs_id = rs_write.entity.pk
    rs_wanted, rs_current = _edges(rs_bp, rs_write, row, target_ids) if rs_written else ({}, {})
    relations_change = row is not None and rs_wanted.keys() != rs_current.keys()
    # what the running service's relations reach before the change (the refresh after the commit walks them after)
    sources = aggregation_sources_of([(rs_bp, [rs_id])]) if relations_change and rs_bp.aggregated_by else {}

    stale = [row_id for edge, (_, row_id) in rs_current.items() if edge not in rs_wanted]
    if stale:
        Relation.objects.filter(pk__in=stale).delete()
    moved = [Relation(pk=row_id, position=rs_wanted[edge]) for edge, (position, row_id) in rs_current.items()
             if edge in rs_wanted and rs_wanted[edge] != position]
    if moved:
        Relation.objects.bulk_update(moved, ["position"])
    dep_wanted, _ = _edges(dep_bp, dep_write, None, {**target_ids, rs_key: rs_id})
    rs_new_edges = [(rs_id, key, target_id, position) for (key, target_id), position in rs_wanted.items()
                    if (key, target_id) not in rs_current]
    if _insert_with_relations(dep_bp, dep_write, actor, now, dep_wanted, rs_new_edges) is None:
        raise Conflict(f"Entity {dep_write.identifier!r} of blueprint {dep_bp.identifier!r} already exists; "
                       "use upsert=true to replace it.")

    written = ([(rs_bp, rs_write)] if rs_written else []) + [(dep_bp, dep_write)]
    for blueprint, write in written:
        _timers_keep(blueprint, write)
    with outbox_batch():  # the refresh and the automations' events: one INSERT
        _record_changes(actor, written, sources)
    return dep_write.entity, rs_write.entity


def _record_changes(actor, written, sources):
    """What follows the rows written: the aggregation refresh queued, the written entities' scorecards, their audit
    rows and their ENTITY_CHANGED announcement."""
    aggregates_refresh_queue(changed=[(bp, [w.entity.pk]) for bp, w in written], sources=sources)
    standings = {}
    for blueprint, write in written:
        standings.update(scorecards_evaluate(blueprint, [write.entity.pk]))
    audit_record_many([
        audit_event_build(
            actor=actor, verb=audit_choices.ENTITY_CREATED if w.created else audit_choices.ENTITY_UPDATED,
            action=audit_choices.AuditAction.CREATE if w.created else audit_choices.AuditAction.UPDATE,
            resource_type="entity", identifier=w.identifier, blueprint=bp.identifier, before=w.before, after=w.after,
            context={"blueprintIdentifier": bp.identifier, "entityIdentifier": w.identifier})
        for bp, w in written], seal_after_commit=False)  # sealed by beat: CI does not wait for the chain
    events.announce(events.ENTITY_CHANGED, [
        {"action": "CREATE" if w.created else "UPDATE", "blueprint": bp.identifier, "identifier": w.identifier,
         "before": snapshot_with_standings(w.before, standings, w.entity.pk, 0),
         "after": snapshot_with_standings(w.after, standings, w.entity.pk, 1),
         "by": actor.label, "origin": actor.origin, "runId": None, "changelogDestination": bp.changelog_destination}
        for bp, w in written])
