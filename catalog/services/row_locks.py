"""The one lock order of every catalog write, and the helpers that take it.

Two transactions deadlock when each waits for a lock the other holds. Every service that writes entities
(entities.py: create/upsert/merge/replace/patch, bulk, placeholders of create_missing_related_entities,
relation changes, delete with dependents; deployments.py with deployment_writes.py; blueprints.py) therefore
takes its locks in this order, each step sorted, and takes no lock of an earlier step once it holds one of a later step:

1. the blueprint-definition advisory lock (`catalog.blueprints`), blueprint create/update only;
2. blueprint rows, sorted by identifier: FOR SHARE by entity writers (their blueprint and every blueprint its
   relations target), FOR UPDATE by blueprint update and delete, so a definition never changes under a write
   validated against it, and a blueprint migration never meets a writer holding entity rows;
3. new entity rows (the entities a request creates and the placeholders of missing relation targets),
   inserted sorted by (blueprint identifier, identifier) with INSERT … ON CONFLICT DO NOTHING, so two
   writers creating the same entities wait for each other in the same order;
4. existing entity rows, locked sorted by (blueprint identifier, identifier) in one pass: FOR NO KEY UPDATE
   for rows written, FOR KEY SHARE for relation targets named in the request (the lock the relation's
   foreign key takes anyway, taken here in order), FOR UPDATE for rows deleted;
5. rows that belong to a locked entity (relations, teams, timers), which no writer changes without holding
   their entity; relation rows kept as they are need no lock on their target;
6. the audit events, last (`audit_record_many` at the end of each service); they are sealed into the hash
   chain after commit by a single sealer (audit/chain.py), so no writer waits on a global lock.

Advisory locks: only step 1's is held together with entity rows. A deployment report takes none (its
environment row, step 4, serializes the reports to one environment); run-quota locks
(actions/services/quotas.py) are taken by run requests, which lock no entity row.
Sorting is by code point on both sides ("C" collation in SQL, Python's str order), whatever the database's
collation. Where the order bends, a deadlock stays possible and is retried at the service boundary
(portal/retry.py): a delete that finds new dependents after locking; a deployment report, which inserts
its running service after locking the environment row, meeting an entity API write creating that same
running service; a TTL teardown, which locks its entity before the delete locks the blueprint.
"""
from itertools import groupby

from django.db import connection

from catalog.models import Blueprint
from catalog.selectors.blueprints import DEFINITION_DIGEST, blueprint_definition_kept, blueprint_definitions_fresh
from portal.prepared_statements import execute_prepared, model_columns, model_from_row

KEY_SHARE, NO_KEY_UPDATE, UPDATE = "KEY SHARE", "NO KEY UPDATE", "UPDATE"
STRENGTH = {KEY_SHARE: 0, NO_KEY_UPDATE: 1, UPDATE: 2}


def blueprints_lock(identifiers):
    """Lock the blueprint rows named FOR SHARE (step 2), sorted; returns those that exist by identifier, as
    stored now. One statement prepared per connection: every entity write and deployment report starts with it."""
    columns, _, _ = model_columns(Blueprint, "b")
    with connection.cursor() as cursor:
        execute_prepared(cursor, "blueprints_lock",
                         f'SELECT {columns} FROM catalog_blueprint b WHERE b.identifier = ANY(%s::text[]) '
                         f'ORDER BY b.identifier COLLATE "C" FOR SHARE OF b', [sorted(set(identifiers))],
                         generic_plan=True)
        rows = cursor.fetchall()
    return {bp.identifier: bp for bp in (model_from_row(Blueprint, "b", row) for row in rows)}


def blueprints_lock_kept(identifiers):
    """`blueprints_lock` for a writer that only reads the definitions (a CI deployment report): the rows are locked
    the same way, but only their digests are read, and each blueprint is answered as this process keeps it
    (`blueprint_definition`) when the locked row is that one, read afresh otherwise. Shared between threads: not
    to be changed by the caller."""
    with connection.cursor() as cursor:
        execute_prepared(cursor, "blueprints_lock_digests",
                         f'SELECT b.identifier, {DEFINITION_DIGEST.format("b")} FROM catalog_blueprint b '
                         f'WHERE b.identifier = ANY(%s::text[]) ORDER BY b.identifier COLLATE "C" FOR SHARE OF b',
                         [sorted(set(identifiers))], generic_plan=True)
        digests = cursor.fetchall()
    found = {identifier: blueprint_definition_kept(identifier) for identifier, _ in digests}
    stale = [identifier for identifier, digest in digests  # not kept, or changed since this process read it
             if getattr(found[identifier], "definition_digest", None) != digest]
    if stale:  # read in one statement (the rows are locked: as they are now)
        found.update(blueprint_definitions_fresh(stale))
    return found


def strongest(locks, keys, strength):
    """Add `keys` to `locks` ({key: strength}), keeping a stronger lock already asked for."""
    for key in keys:
        if STRENGTH[strength] > STRENGTH.get(locks.get(key), -1):
            locks[key] = strength
    return locks


def entity_rows_insert(keys, *, blueprints, stub_keys=frozenset(), by="", run_id="", now):
    """Insert the entity rows of `keys` ((blueprint identifier, identifier)) that do not exist yet (step 3),
    sorted, as placeholders titled with their identifier; those in `stub_keys` are marked as stubs. Returns
    {key: id} of the rows this call inserted (a row another transaction holds uncommitted is waited for)."""
    keys = sorted(set(keys))
    if not keys:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO catalog_entity (blueprint_id, identifier, title, icon, properties, created_at, updated_at,
                                           created_by, updated_by, run_id, is_stub, datasource)
               SELECT k.blueprint_id, k.identifier, k.identifier, '', '{}'::jsonb, %(now)s, %(now)s, %(by)s, %(by)s,
                      %(run_id)s, k.is_stub, ''
                 FROM unnest(%(blueprint_ids)s::bigint[], %(identifiers)s::text[], %(stubs)s::boolean[])
                      WITH ORDINALITY AS k(blueprint_id, identifier, is_stub, position)
                ORDER BY k.position
               ON CONFLICT (blueprint_id, identifier) DO NOTHING
               RETURNING blueprint_id, identifier, id""",
            {"now": now, "by": by, "run_id": run_id or "", "blueprint_ids": [blueprints[bp].pk for bp, _ in keys],
             "identifiers": [identifier for _, identifier in keys], "stubs": [key in stub_keys for key in keys]})
        rows = cursor.fetchall()
    identifiers_by_id = {bp.pk: identifier for identifier, bp in blueprints.items()}
    return {(identifiers_by_id[blueprint_id], identifier): pk for blueprint_id, identifier, pk in rows}


def entity_rows_lock(locks, *, blueprints):
    """Lock existing entity rows (step 4): `locks` is {(blueprint identifier, identifier): strength}, taken
    in sorted key order, one statement per run of one blueprint and one strength. Returns {key: id} of the
    rows that exist (a row deleted meanwhile is absent)."""
    ids = {}
    ordered = sorted(locks.items())
    for (bp_identifier, strength), run in groupby(ordered, key=lambda item: (item[0][0], item[1])):
        identifiers = [identifier for (_, identifier), _ in run]
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT identifier, id FROM catalog_entity WHERE blueprint_id = %s AND identifier = ANY(%s) '
                           f'ORDER BY identifier COLLATE "C" FOR {strength}', [blueprints[bp_identifier].pk, identifiers])
            ids.update({(bp_identifier, identifier): pk for identifier, pk in cursor.fetchall()})
    return ids


def entity_rows_lock_by_id(ids, strength):
    """Lock the entity rows of `ids` FOR `strength` (step 4), in the same order as entity_rows_lock, sorted by
    (blueprint identifier, identifier), in one statement. Returns the ids of the rows that exist."""
    with connection.cursor() as cursor:
        cursor.execute('SELECT e.id FROM catalog_entity e JOIN catalog_blueprint b ON b.id = e.blueprint_id '
                       'WHERE e.id = ANY(%s) ORDER BY b.identifier COLLATE "C", e.identifier COLLATE "C" '
                       f'FOR {strength} OF e', [sorted(set(ids))])
        return {pk for pk, in cursor.fetchall()}
