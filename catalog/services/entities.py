"""Every write to entities: create/upsert/merge/replace/patch (single and bulk) and delete.

One code path for one entity or twenty: inputs are parsed and validated first (per index, so a bulk
request reports each failure), then written with a fixed number of statements, audited in the same
transaction, and announced in it (portal/events.py: subscribers run there, their error fails the write).

Lock order (every write path here; the full order, with deployments and blueprints, is in row_locks.py):
the blueprint rows FOR SHARE (the written blueprint and its relations' targets, sorted by identifier); then
new rows — the entities a create/upsert may create and the placeholders of create_missing_related_entities —
inserted sorted by (blueprint, identifier) with INSERT … ON CONFLICT DO NOTHING; then one sorted pass over
(blueprint, identifier) locking the written rows FOR NO KEY UPDATE and the relation targets the request
names FOR KEY SHARE (a delete: its rows FOR UPDATE, the sources whose relations it clears FOR NO KEY
UPDATE); then relations, teams and timers of the locked rows; the audit last. Rows inserted for writes
that were refused, or for targets only those named, are deleted before commit. A deadlock or
serialization failure left over is retried by `retry_on_conflict` when the service is the outermost
transaction.
"""
import json
import secrets
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from audit import choices as audit_choices
from audit.services import audit_event_build, audit_record_many
from catalog.access import blueprint_access
from catalog.identifiers import check_entity_identifier
from catalog.models import Entity, Relation, Team, Timer
from catalog.selectors.aggregations import aggregation_sources
from catalog.services.aggregations import aggregates_refresh
from catalog.services.scorecards import scorecards_evaluate
from catalog.services.row_locks import (KEY_SHARE, NO_KEY_UPDATE, STRENGTH, UPDATE, blueprints_lock,
                                        entity_rows_insert, entity_rows_lock, strongest)
from catalog.validation import properties_canonical, properties_errors
from portal import events, strictjson
from portal.datetimes import instant_of
from portal.errors import Conflict, Forbidden, NotFound, PortalError, ValidationFailed
from portal.prepared_statements import execute_prepared
from portal.retry import retry_on_conflict

CREATE, UPSERT, UPSERT_MERGE, REPLACE, PATCH = "create", "upsert", "upsert_merge", "replace", "patch"
ENTITY_KEYS = {"identifier", "title", "icon", "blueprint", "team", "properties", "relations", "scorecards",
               "createdAt", "createdBy", "updatedAt", "updatedBy"}


@dataclass
class EntityWrite:
    """One requested write, as validated; `error` holds why it was refused."""

    index: int
    data: dict
    identifier: str = ""
    existing: Entity | None = None
    title: str = ""
    icon: str = ""
    properties: dict = field(default_factory=dict)
    relations: dict = field(default_factory=dict)  # relation -> [target identifiers]
    teams: list | None = None  # names; None = unchanged
    before: dict | None = None
    after: dict | None = None
    entity: Entity | None = None
    error: PortalError | None = None

    @property
    def created(self):
        return self.existing is None


def entity_stored_json(blueprint, identifier, title, icon, properties, relations, teams):
    """The stored part of an entity's JSON (what the audit diff records)."""
    rendered = {}
    for key, definition in blueprint.relations.items():
        targets = relations.get(key, [])
        rendered[key] = list(targets) if definition.get("many") else (targets[0] if targets else None)
    return {"identifier": identifier, "title": title, "icon": icon or None, "blueprint": blueprint.identifier,
            "team": sorted(teams), "properties": properties, "relations": rendered}


def _parse_relations(blueprint, raw, path="relations"):
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValidationFailed("must be an object of relation identifiers", path=path)
    parsed = {}
    for key, value in raw.items():
        definition = blueprint.relations.get(key)
        if definition is None:
            raise ValidationFailed(f"is not a relation of blueprint {blueprint.identifier!r}", path=f"{path}.{key}")
        if value is None:
            targets = []
        elif isinstance(value, str):
            targets = [value]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            if not definition.get("many") and len(value) > 1:
                raise ValidationFailed(f"relation is not 'many'; give one identifier, not {len(value)}", path=f"{path}.{key}")
            targets = list(dict.fromkeys(value))
        else:
            raise ValidationFailed("must be an entity identifier, a list of them, or null", path=f"{path}.{key}")
        for i, target in enumerate(targets):
            check_entity_identifier(target, f"{path}.{key}" + (f"[{i}]" if isinstance(value, list) else ""))
        parsed[key] = targets
    return parsed


def _parse_teams(raw):
    if raw is None:
        return None
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and all(isinstance(t, str) for t in raw):
        return list(dict.fromkeys(raw))
    raise ValidationFailed("must be a team name or a list of team names", path="team")


def entity_write_prepare(write, blueprint, mode, existing_relations, existing_teams):
    data = write.data
    if not isinstance(data, dict):
        raise ValidationFailed("each entity must be a JSON object", path="body")
    unknown = set(data) - ENTITY_KEYS
    if unknown:
        raise ValidationFailed("is not an entity field", path=sorted(unknown)[0])
    unstorable = strictjson.problem(data)  # writers other than the API (jq mappings, imports) had no parser check it
    if unstorable:
        raise ValidationFailed(unstorable)
    if data.get("blueprint") not in (None, blueprint.identifier):
        raise ValidationFailed(f"entity names blueprint {data['blueprint']!r} but is sent to {blueprint.identifier!r}",
                               path="blueprint")
    properties = data.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise ValidationFailed("must be an object", path="properties")
    for key in ("title", "icon"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ValidationFailed("must be a string", path=key)
        longest = Entity._meta.get_field(key).max_length
        if isinstance(data.get(key), str) and len(data[key]) > longest:
            raise ValidationFailed(f"must be at most {longest} characters", path=key)
    relations = _parse_relations(blueprint, data.get("relations"))
    teams = _parse_teams(data.get("team"))
    existing = write.existing
    merging = existing is not None and mode in (UPSERT_MERGE, PATCH)
    if merging:
        write.properties = {**existing.properties, **properties}
        write.relations = {**existing_relations, **relations}
        write.title = data["title"] if data.get("title") is not None else existing.title
        write.icon = data["icon"] if "icon" in data else existing.icon
        write.teams = teams if teams is not None else existing_teams
    else:
        defaults = {k: p["default"] for k, p in blueprint.schema.get("properties", {}).items() if "default" in p}
        write.properties = {**defaults, **properties} if existing is None else dict(properties)
        write.relations = relations
        write.title = data.get("title") or (existing.title if existing else write.identifier)
        write.icon = data.get("icon") or ""
        write.teams = teams if teams is not None else ([] if existing is None else existing_teams)
    write.icon = write.icon or ""
    write.properties = {k: v for k, v in write.properties.items() if v is not None}
    errors = properties_errors(blueprint, write.properties)
    if errors:
        raise ValidationFailed(errors=errors[:10])
    write.properties = properties_canonical(blueprint, write.properties)
    for key, definition in blueprint.relations.items():
        if definition.get("required") and not write.relations.get(key):
            raise ValidationFailed(f"is required by blueprint {blueprint.identifier!r}", path=f"relations.{key}")
    write.relations = {k: v for k, v in write.relations.items() if v}


def _check_permission(write, access, blueprint, existing_relations, existing_team_ids, team_ids_by_name):
    new_team_ids = {team_ids_by_name[name] for name in write.teams if name in team_ids_by_name}
    if write.existing is None:
        if not access.allows("register", new_team_ids):
            raise Forbidden(f"You may not create entities of blueprint {blueprint.identifier!r}"
                            + (" for these teams" if access.owned else "") + ".")
        return
    if access.allows("update", existing_team_ids):
        return
    changed_properties = [k for k in set(write.properties) | set(write.existing.properties)
                          if write.properties.get(k) != write.existing.properties.get(k)]
    changed_relations = [k for k in set(write.relations) | set(existing_relations)
                         if write.relations.get(k, []) != existing_relations.get(k, [])]
    denied = access.may_update_keys(changed_properties, changed_relations, existing_team_ids)
    meta_changed = (write.title != write.existing.title or write.icon != (write.existing.icon or "")
                    or set(write.teams) != {n for n, i in team_ids_by_name.items() if i in existing_team_ids})
    if meta_changed:
        denied.insert(0, "title/icon/team")
    if denied:
        raise Forbidden(f"You may not update {', '.join(denied)} of entities of blueprint {blueprint.identifier!r}.")


def entity_timer_values(blueprint, properties):
    timers = {}
    for key, prop in blueprint.schema.get("properties", {}).items():
        moment = instant_of(properties.get(key)) if prop.get("format") == "timer" else None
        if moment is not None:
            timers[key] = moment
    return timers


@retry_on_conflict
def entities_write(*, actor, blueprint, items, mode=CREATE, create_missing_related=False, validation_only=False, run_id="",
                   identifier=None):
    """Validate and write `items` (entity JSON dicts) of one blueprint. Returns one EntityWrite per item;
    those with `error` set were refused and wrote nothing. `identifier` names the entity for PUT/PATCH."""
    return _entities_write(actor=actor, blueprint=blueprint, items=items, mode=mode, identifier=identifier,
                           create_missing_related=create_missing_related, validation_only=validation_only, run_id=run_id)


def _writer_blueprints_lock(blueprint):
    """Step 2 of the lock order: the written blueprint and the blueprints its relations target, FOR SHARE.
    Returns them as stored now (a definition changed since `blueprint` was read is the one validated)."""
    targets = {d["target"] for d in blueprint.relations.values()}
    blueprints = blueprints_lock({blueprint.identifier, *targets})
    if blueprint.identifier not in blueprints:
        raise NotFound(f"Blueprint {blueprint.identifier!r} was not found.")
    added = {d["target"] for d in blueprints[blueprint.identifier].relations.values()} - set(blueprints)
    if added:  # a relation added meanwhile: its target blueprint is locked now, after the others
        blueprints.update(blueprints_lock(added))
    return blueprints


def _named_targets(blueprint, data):
    """(blueprint identifier, identifier) of the relation targets a body names; a malformed relations value
    names none here (its write is refused by entity_write_prepare)."""
    try:
        relations = _parse_relations(blueprint, data.get("relations")) if isinstance(data, dict) else {}
    except PortalError:
        return set()
    return {(blueprint.relations[key]["target"], target) for key, targets in relations.items() for target in targets}


@transaction.atomic
def _entities_write(*, actor, blueprint, items, mode, create_missing_related, validation_only, run_id, identifier):
    if run_id:
        events.run_checks(events.RUN_REFERENCE, run_id)
    blueprints = _writer_blueprints_lock(blueprint)
    blueprint = blueprints[blueprint.identifier]
    access = blueprint_access(actor.user, blueprint) if actor.user is not None else None
    writes = [EntityWrite(index=i, data=item) for i, item in enumerate(items)]
    for write in writes:
        data = write.data if isinstance(write.data, dict) else {}
        write.identifier = identifier if identifier is not None else data.get("identifier")
        if identifier is not None and data.get("identifier") not in (None, identifier):
            write.error = ValidationFailed(f"body names {data['identifier']!r} but the path names {identifier!r}",
                                           path="identifier")
            continue
        if write.identifier is None and mode in (CREATE, UPSERT, UPSERT_MERGE):
            write.identifier = "e_" + secrets.token_hex(8)
        try:
            check_entity_identifier(write.identifier)
        except PortalError as exc:
            write.error = exc
    seen = set()
    for write in writes:
        if write.error is not None:  # its identifier may not even be a string
            continue
        if write.identifier in seen:
            write.error = ValidationFailed(f"{write.identifier!r} appears more than once in the request", path="identifier")
        seen.add(write.identifier)

    # Steps 3 and 4 of the lock order (row_locks.py): insert what may be new, then lock every row, sorted.
    own_keys = {(blueprint.identifier, w.identifier) for w in writes if w.error is None}
    target_keys = set().union(*(_named_targets(blueprint, w.data) for w in writes if w.error is None))
    now = timezone.now()
    inserted = {}
    if not validation_only:
        creating = own_keys if mode in (CREATE, UPSERT, UPSERT_MERGE) else set()
        stubs = target_keys - own_keys if create_missing_related else set()
        inserted = entity_rows_insert(creating | stubs, blueprints=blueprints, stub_keys=stubs, by=actor.label,
                                      run_id=run_id, now=now)
    locks = strongest(strongest({}, target_keys, KEY_SHARE), own_keys, NO_KEY_UPDATE)
    ids = entity_rows_lock(locks, blueprints=blueprints)
    existing = {e.identifier: e for e in Entity.objects.filter(
        pk__in=[ids[key] for key in own_keys if key in ids and key not in inserted])}
    for entity in existing.values():
        entity.blueprint = blueprint
    existing_ids = [e.pk for e in existing.values()]
    existing_relations = defaultdict(lambda: defaultdict(list))
    kept_target_ids = defaultdict(dict)  # source id -> {(relation, target identifier): target id}
    for source_id, relation, target, target_id in (Relation.objects.filter(source_id__in=existing_ids).order_by("position", "id")
                                                   .values_list("source_id", "relation", "target__identifier", "target_id")):
        existing_relations[source_id][relation].append(target)
        kept_target_ids[source_id][(relation, target)] = target_id
    existing_team_ids = defaultdict(set)
    for entity_id, team_id in Entity.teams.through.objects.filter(entity_id__in=existing_ids).values_list("entity_id", "team_id"):
        existing_team_ids[entity_id].add(team_id)
    team_ids_by_name = dict(Team.objects.values_list("name", "id"))
    team_names_by_id = {i: n for n, i in team_ids_by_name.items()}

    for write in writes:
        if write.error is not None:
            continue
        write.existing = existing.get(write.identifier)
        try:
            if write.existing is not None and mode == CREATE:
                raise Conflict(f"Entity {write.identifier!r} of blueprint {blueprint.identifier!r} already exists; "
                               "use upsert=true to replace it.")
            if write.existing is None and mode in (REPLACE, PATCH):
                raise NotFound(f"Entity {write.identifier!r} of blueprint {blueprint.identifier!r} was not found.")
            old_relations = dict(existing_relations[write.existing.pk]) if write.existing else {}
            old_team_ids = existing_team_ids[write.existing.pk] if write.existing else set()
            old_teams = sorted(team_names_by_id[i] for i in old_team_ids)
            entity_write_prepare(write, blueprint, mode, old_relations, old_teams)
            unknown_teams = [name for name in write.teams if name not in team_ids_by_name]
            if unknown_teams:
                raise ValidationFailed(f"team {unknown_teams[0]!r} does not exist", path="team")
            if access is not None:
                _check_permission(write, access, blueprint, old_relations, old_team_ids, team_ids_by_name)
            if write.existing is not None:
                e = write.existing
                write.before = entity_stored_json(blueprint, e.identifier, e.title, e.icon, e.properties, old_relations, old_teams)
            write.after = entity_stored_json(blueprint, write.identifier, write.title, write.icon, write.properties,
                                       write.relations, write.teams)
        except PortalError as exc:
            write.error = exc

    accepted = [w for w in writes if w.error is None]
    _resolve_targets(blueprint, accepted, ids, inserted, kept_target_ids, create_missing_related)
    accepted = [w for w in writes if w.error is None]
    if validation_only:
        return writes
    stubs = _placeholders_settle(blueprint, accepted, inserted)
    if accepted:
        _store(actor, blueprint, accepted, inserted, team_ids_by_name, run_id, now, stubs)
    return writes


def _resolve_targets(blueprint, writes, ids, inserted, kept_target_ids, create_missing):
    """Map each write's relation targets to entity ids (`write.target_ids`); a target that does not exist
    refuses its write (unless create_missing: its placeholder was inserted, or would be). A row this request
    inserted for a write that was refused does not count, so refusals repeat until none is added."""
    while True:
        accepted = {(blueprint.identifier, w.identifier) for w in writes if w.error is None}
        refused = False
        for write in writes:
            if write.error is not None:
                continue
            kept = kept_target_ids[write.existing.pk] if write.existing is not None else {}
            write.target_ids = {}
            for key, targets in write.relations.items():
                bp_identifier = blueprint.relations[key]["target"]
                for target in targets:
                    target_key = (bp_identifier, target)
                    if (key, target) in kept:
                        write.target_ids[target_key] = kept[(key, target)]
                    elif target_key in accepted or create_missing or (target_key in ids and target_key not in inserted):
                        write.target_ids[target_key] = ids.get(target_key)
                    elif write.error is None:
                        write.error = NotFound(f"target entity {target!r} of blueprint {bp_identifier!r} does not exist "
                                               "(create it first, or pass create_missing_related_entities=true)",
                                               path=f"relations.{key}")
                        refused = True
        if not refused:
            return


def _placeholders_settle(blueprint, accepted, inserted):
    """Of the rows this request inserted: keep those of accepted writes, keep as stubs the targets the
    accepted writes relate to, delete the rest (rows of refused writes, targets only they named).
    Returns the stub keys, for the audit."""
    own = {(blueprint.identifier, w.identifier) for w in accepted}
    related = {key for w in accepted for key in w.target_ids}
    stubs = sorted(key for key in inserted if key not in own and key in related)
    unused = [pk for key, pk in inserted.items() if key not in own and key not in related]
    if unused:
        Entity.objects.filter(pk__in=unused).delete()
    if stubs:  # a row inserted for a refused write of this request, that another one relates to
        Entity.objects.filter(pk__in=[inserted[key] for key in stubs]).update(is_stub=True)
    return stubs


def entity_write_unchanged(write, actor, run_id):
    """An update that would change nothing, by the same writer: it is not written (updatedAt stays, no audit
    event, no automation). Ocean upserts everything it sees on each resync and then asks for its entities last
    written before the resync began (datasource-entities `before`): an entity it saw again unchanged must still
    be among them, or the share it would delete looks larger than it is."""
    entity = write.existing
    return (entity is not None and write.before == write.after and not entity.is_stub
            and entity.datasource == actor.datasource and (not run_id or entity.run_id == run_id))


# The written rows' columns from one JSON array, in one prepared statement: the ORM's bulk_update builds a CASE per
# column per row, which took half the CPU of a bulk request of twenty entities.
ROWS_UPDATE_SQL = (
    f"UPDATE {Entity._meta.db_table} e SET title = v.title, icon = v.icon, properties = v.properties, "
    "updated_by = v.updated_by, updated_at = v.updated_at, is_stub = false, run_id = v.run_id, datasource = v.datasource "
    "FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, title text, icon text, properties jsonb, updated_by text, "
    "updated_at timestamptz, run_id text, datasource text) WHERE e.id = v.id")


def _rows_update(entities):
    """Write the entities' title, icon, properties, updated_by/at, run_id and datasource as they are in memory
    (is_stub false): their rows are locked already."""
    if not entities:
        return
    rows = [{"id": e.pk, "title": e.title, "icon": e.icon, "properties": e.properties, "updated_by": e.updated_by,
             "updated_at": e.updated_at.isoformat(), "run_id": e.run_id, "datasource": e.datasource} for e in entities]
    with connection.cursor() as cursor:
        execute_prepared(cursor, "entity_rows_update", ROWS_UPDATE_SQL, [json.dumps(rows)], generic_plan=True)


def _store(actor, blueprint, writes, inserted, team_ids_by_name, run_id, now, stubs):
    for write in writes:
        if entity_write_unchanged(write, actor, run_id):
            write.entity = write.existing
    writes = [w for w in writes if w.entity is None]
    new = [w for w in writes if w.existing is None]
    for write in new:
        write.entity = Entity(pk=inserted[(blueprint.identifier, write.identifier)], blueprint=blueprint,
                              identifier=write.identifier, created_by=actor.label, created_at=now)
    for write in writes:
        entity = write.entity = write.existing or write.entity
        entity.title, entity.icon, entity.properties = write.title, write.icon, write.properties
        entity.updated_by, entity.updated_at, entity.is_stub = actor.label, now, False
        entity.datasource = actor.datasource  # the last writer owns it: an integration removes only its own
        if run_id or write.existing is None:
            entity.run_id = run_id or ""
    _rows_update([w.entity for w in writes])
    entity_ids = [w.entity.pk for w in writes]
    ids_by_identifier = {w.identifier: w.entity.pk for w in writes}
    sources = aggregation_sources(blueprint, entity_ids)  # what the relations reach before the change
    _relations_store(blueprint, writes, ids_by_identifier)

    updated = [w for w in writes if w.existing is not None]
    through = Entity.teams.through
    through.objects.filter(entity_id__in=[w.entity.pk for w in updated]).delete()
    through.objects.bulk_create([through(entity_id=w.entity.pk, team_id=team_ids_by_name[name]) for w in writes for name in w.teams])

    entity_timers_sync(blueprint, writes)
    for own, found in aggregation_sources(blueprint, entity_ids).items():
        sources.setdefault(own, set()).update(found)
    aggregates_refresh(actor=actor, sources=sources, written_ids=set(entity_ids))
    standings = scorecards_evaluate(blueprint, entity_ids)
    # Step 6 of the lock order: the audit, last.
    audit_record_many([
        audit_event_build(actor=actor, verb=audit_choices.ENTITY_CREATED, action=audit_choices.AuditAction.CREATE,
                          resource_type="entity", identifier=identifier, blueprint=bp_identifier,
                          after={"identifier": identifier, "blueprint": bp_identifier},
                          message="Created as a stub by create_missing_related_entities.")
        for bp_identifier, identifier in stubs
    ] + [
        audit_event_build(
            actor=actor,
            verb=audit_choices.ENTITY_CREATED if w.created else audit_choices.ENTITY_UPDATED,
            action=audit_choices.AuditAction.CREATE if w.created else audit_choices.AuditAction.UPDATE,
            resource_type="entity", identifier=w.identifier, blueprint=blueprint.identifier, run_id=run_id,
            before=w.before, after=w.after, context={"blueprintIdentifier": blueprint.identifier, "entityIdentifier": w.identifier},
        )
        for w in writes
    ])
    _announce_changes(actor, blueprint, [(("CREATE" if w.created else "UPDATE"), w.identifier,
                                          snapshot_with_standings(w.before, standings, w.entity.pk, 0),
                                          snapshot_with_standings(w.after, standings, w.entity.pk, 1)) for w in writes], run_id)
    return entity_ids


def snapshot_with_standings(snapshot, standings, entity_id, side):
    """An announced snapshot of an entity of a blueprint with scorecards carries its standings (before or after),
    so an automation can act on a level change."""
    if snapshot is None or entity_id not in standings:
        return snapshot
    return {**snapshot, "scorecards": standings[entity_id][side]}


def _relations_store(blueprint, writes, ids_by_identifier):
    """Make the relation rows of `writes` what they say: rows that stay are kept (their target needs no lock),
    removed ones deleted, new ones inserted (their targets were locked in order), moved ones renumbered."""
    wanted = {}  # (source id, relation, target id) -> position
    for write in writes:
        for key, targets in write.relations.items():
            bp_identifier = blueprint.relations[key]["target"]
            for position, target in enumerate(targets):
                target_id = write.target_ids.get((bp_identifier, target))
                if target_id is None and bp_identifier == blueprint.identifier:
                    target_id = ids_by_identifier[target]
                wanted[(write.entity.pk, key, target_id)] = position
    current = {(r.source_id, r.relation, r.target_id): r
               for r in Relation.objects.filter(source_id__in=[w.entity.pk for w in writes if w.existing is not None])}
    Relation.objects.filter(pk__in=[r.pk for edge, r in current.items() if edge not in wanted]).delete()
    moved = []
    for edge, row in current.items():
        if edge in wanted and row.position != wanted[edge]:
            row.position = wanted[edge]
            moved.append(row)
    Relation.objects.bulk_update(moved, ["position"])
    Relation.objects.bulk_create([Relation(source_id=source_id, relation=relation, target_id=target_id, position=position)
                                  for (source_id, relation, target_id), position in wanted.items()
                                  if (source_id, relation, target_id) not in current])


def entity_timers_sync(blueprint, writes):
    timer_keys = [k for k, p in blueprint.schema.get("properties", {}).items() if p.get("format") == "timer"]
    if not timer_keys:
        return
    ids = [w.entity.pk for w in writes]
    current = {(t.entity_id, t.property): t for t in Timer.objects.filter(entity_id__in=ids)}
    keep, upserts = set(), []
    for write in writes:
        for key, expires_at in entity_timer_values(blueprint, write.properties).items():
            keep.add((write.entity.pk, key))
            old = current.get((write.entity.pk, key))
            if old is None or old.expires_at != expires_at:
                # A new expiry re-arms the timer: it fires, warns and may fail to terminate afresh.
                upserts.append(Timer(entity_id=write.entity.pk, property=key, expires_at=expires_at, fired_at=None,
                                     warned_at=None, termination_failed_at=None))
    stale = [t.pk for k, t in current.items() if k not in keep]
    Timer.objects.filter(pk__in=stale).delete()
    Timer.objects.bulk_create(upserts, update_conflicts=True, unique_fields=["entity", "property"],
                              update_fields=["expires_at", "fired_at", "warned_at", "termination_failed_at"])


def _announce_changes(actor, blueprint, changes, run_id):
    payload = [
        {"action": action, "blueprint": blueprint.identifier, "identifier": identifier, "before": before, "after": after,
         "by": actor.label, "origin": actor.origin, "runId": run_id or None,
         "changelogDestination": blueprint.changelog_destination}
        for action, identifier, before, after in changes
    ]
    events.announce(events.ENTITY_CHANGED, payload)


def entity_write_one(*, actor, blueprint, data, mode=CREATE, identifier=None, **options):
    """Single-entity form of `entities_write`: raises the write's error instead of reporting it."""
    (write,) = entities_write(actor=actor, blueprint=blueprint, items=[data], mode=mode, identifier=identifier, **options)
    if write.error is not None:
        raise write.error
    return write


@retry_on_conflict
@transaction.atomic
def entities_delete(*, actor, blueprint, identifiers, delete_dependents=False, run_id="", owned_only=False):
    """Delete entities of one blueprint. Entities others require (a required relation) are refused (409 naming
    them) unless `delete_dependents`, which deletes those dependents; optional relations to them are cleared.
    `owned_only` (an Ocean integration's bulk delete): only those whose datasource is the actor's are deleted,
    the others are left as they are and not reported, so an integration never removes what others wrote."""
    if run_id:
        events.run_checks(events.RUN_REFERENCE, run_id)
    identifiers = list(dict.fromkeys(identifiers))
    roots = list(Entity.objects.select_related("blueprint").filter(blueprint=blueprint, identifier__in=identifiers))
    missing = set(identifiers) - {e.identifier for e in roots}
    if missing:
        raise NotFound(f"Entity {sorted(missing)[0]!r} of blueprint {blueprint.identifier!r} was not found.")
    if owned_only:
        roots = [e for e in roots if e.datasource == actor.datasource]
        if not roots:
            return [], []
    # Refuse what the caller may not delete before looking at dependents (their names are not theirs to learn).
    _check_unregister(actor, roots)
    # The lock order (row_locks.py): find the dependents, lock their blueprints and then every row, sorted;
    # look again holding the locks, and lock what a writer added meanwhile (out of order, but rare: retried).
    doomed, cleared = _dependents_find(roots, delete_dependents)
    blueprints = blueprints_lock({e.blueprint.identifier for e in [*doomed.values(), *(s for s, _ in cleared.values())]})
    held = {}
    while True:
        locks = strongest({}, [(s.blueprint.identifier, s.identifier) for s, _ in cleared.values()], NO_KEY_UPDATE)
        locks = strongest(locks, [(e.blueprint.identifier, e.identifier) for e in doomed.values()], UPDATE)
        more = {key: strength for key, strength in locks.items() if STRENGTH[strength] > STRENGTH.get(held.get(key), -1)}
        if not more:
            break
        unlocked_blueprints = {bp for bp, _ in more} - set(blueprints)
        if unlocked_blueprints:
            blueprints.update(blueprints_lock(unlocked_blueprints))
        found = entity_rows_lock(more, blueprints=blueprints)
        held.update(more)
        gone = [key for key in more if key not in found and key[0] == blueprint.identifier and key[1] in identifiers]
        if gone:  # deleted by another writer while we waited
            raise NotFound(f"Entity {gone[0][1]!r} of blueprint {blueprint.identifier!r} was not found.")
        roots = list(Entity.objects.select_related("blueprint").filter(pk__in=[e.pk for e in roots]))  # as locked
        doomed, cleared = _dependents_find(roots, delete_dependents)
    _check_unregister(actor, doomed.values())
    before = _stored_snapshots(list(doomed.values()) + [source for source, _ in cleared.values()])
    sources = {}  # whose aggregations counted what goes: found before it goes
    for group in _by_blueprint([*doomed.values(), *(s for s, _ in cleared.values())]):
        for own, found in aggregation_sources(group[0].blueprint, [e.pk for e in group]).items():
            sources.setdefault(own, set()).update(found)
    Entity.objects.filter(pk__in=list(doomed)).delete()
    aggregates_refresh(actor=actor, sources=sources)
    audit_events = [
        audit_event_build(actor=actor, verb=audit_choices.ENTITY_DELETED, action=audit_choices.AuditAction.DELETE,
                          resource_type="entity", identifier=e.identifier, blueprint=e.blueprint.identifier, run_id=run_id,
                          before=before[e.pk], after=None,
                          context={"blueprintIdentifier": e.blueprint.identifier, "entityIdentifier": e.identifier},
                          message="" if e.pk in {r.pk for r in roots} else "Deleted as a dependent (delete_dependents=true).")
        for e in doomed.values()
    ]
    changes = [("DELETE", e.blueprint, e.identifier, before[e.pk], None) for e in doomed.values()]
    for source, relations in cleared.values():
        after = _stored_snapshots([source])[source.pk]
        audit_events.append(audit_event_build(
            actor=actor, verb=audit_choices.ENTITY_UPDATED, action=audit_choices.AuditAction.UPDATE, resource_type="entity",
            identifier=source.identifier, blueprint=source.blueprint.identifier, run_id=run_id, before=before[source.pk],
            after=after, message=f"Cleared relations {sorted(set(relations))} to deleted entities."))
        changes.append(("UPDATE", source.blueprint, source.identifier, before[source.pk], after))
    audit_record_many(audit_events)
    payload = [{"action": a, "blueprint": bp.identifier, "identifier": i, "before": b, "after": af, "by": actor.label,
                "origin": actor.origin, "runId": run_id or None, "changelogDestination": bp.changelog_destination}
               for a, bp, i, b, af in changes]
    events.announce(events.ENTITY_CHANGED, payload)
    return [e.identifier for e in roots], [e.identifier for e in doomed.values() if e.pk not in {r.pk for r in roots}]


def _by_blueprint(entities):
    groups = defaultdict(list)
    for entity in entities:
        groups[entity.blueprint_id].append(entity)
    return list(groups.values())


def _dependents_find(roots, delete_dependents):
    """({id: entity} to delete: the roots and, with delete_dependents, entities whose required relation
    reaches them; {source id: (entity, [relations])} whose optional relations to them are cleared)."""
    doomed = {e.pk: e for e in roots}
    cleared = {}
    frontier = list(doomed)
    while frontier:
        incoming = list(Relation.objects.filter(target_id__in=frontier).exclude(source_id__in=list(doomed))
                        .select_related("source__blueprint", "target"))
        # Only a required relation blocks (Port: delete_dependents is for required relations); an optional one
        # pointing at a deleted entity is cleared.
        blocking = [r for r in incoming if r.source.blueprint.relations.get(r.relation, {}).get("required", False)]
        if blocking and not delete_dependents:
            names = sorted({f"{r.source.blueprint.identifier}:{r.source.identifier}" for r in blocking})
            shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
            raise Conflict(f"Entities require {'these entities' if len(roots) > 1 else repr(roots[0].identifier)}: {shown}. "
                           "Pass delete_dependents=true to delete them too.",
                           details={"dependents": names})
        frontier = []
        for row in incoming:
            required = row.source.blueprint.relations.get(row.relation, {}).get("required", False)
            if required and row.source_id not in doomed:
                doomed[row.source_id] = row.source
                frontier.append(row.source_id)
            elif not required:
                cleared.setdefault(row.source_id, (row.source, []))[1].append(row.relation)
    return doomed, {k: v for k, v in cleared.items() if k not in doomed}


def _check_unregister(actor, entities):
    if actor.user is None:
        return
    entities = list(entities)
    accesses = {}
    for entity in entities:
        accesses.setdefault(entity.blueprint_id, blueprint_access(actor.user, entity.blueprint))
    team_ids = defaultdict(set)
    for entity_id, team_id in (Entity.teams.through.objects.filter(entity_id__in=[e.pk for e in entities])
                               .values_list("entity_id", "team_id")):
        team_ids[entity_id].add(team_id)
    for entity in entities:
        if not accesses[entity.blueprint_id].allows("unregister", team_ids[entity.pk]):
            raise Forbidden(f"You may not delete entity {entity.identifier!r} of blueprint {entity.blueprint.identifier!r}.")


def _stored_snapshots(entities):
    ids = [e.pk for e in entities]
    relations = defaultdict(lambda: defaultdict(list))
    for source_id, relation, target in (Relation.objects.filter(source_id__in=ids).order_by("position", "id")
                                        .values_list("source_id", "relation", "target__identifier")):
        relations[source_id][relation].append(target)
    teams = defaultdict(list)
    for entity_id, name in Entity.teams.through.objects.filter(entity_id__in=ids).values_list("entity_id", "team__name"):
        teams[entity_id].append(name)
    return {e.pk: entity_stored_json(e.blueprint, e.identifier, e.title, e.icon, e.properties, relations[e.pk], teams[e.pk])
            for e in entities}
