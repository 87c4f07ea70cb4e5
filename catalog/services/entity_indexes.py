"""Expression indexes for the properties a blueprint marks `"indexed": true`, kept in step with the definitions.

A catalog table sorted by a property orders by `NULLIF(properties -> key, 'null')` then id
(catalog/selectors/sorted_pages.py), which no general index matches: at 100,000 entities PostgreSQL reads and
sorts the whole blueprint for each page. An indexed property gets two partial indexes on the entity table,
`WHERE blueprint_id = <its blueprint>`, on exactly that expression and id: one ascending with missing values last,
one ascending with missing values first, so each of the four orders a table pages in (ascending or descending,
forwards or backwards, missing values last going forwards) is one of them read forwards or backwards.

They are built and dropped CONCURRENTLY (entity writes go on meanwhile), which PostgreSQL allows only outside a
transaction, so not in the blueprint's: a blueprint change that alters which properties are indexed queues
`entity_indexes_sync` in the transactional outbox (it runs after the commit, on a worker, retried if it fails),
and beat runs it hourly as a repair (a build cut short by a killed worker leaves an INVALID index: it is dropped
and built again). It compares the indexes that should exist, for every blueprint, with those that do (by name:
ENTITY_SORT_INDEX_PREFIX, the blueprint id and a hash of the key), so it is idempotent and also drops the indexes of
deleted blueprints. Each index built or dropped is an audit event. DDL runs as the owner role (the app's role may
not create indexes).
"""
import hashlib
import json
import logging

from django.db import connection, transaction

from audit import choices as audit_choices
from audit.database_role import database_owner
from audit.services import audit_record
from catalog.models import Blueprint, Entity

logger = logging.getLogger(__name__)

ENTITY_TABLE = Entity._meta.db_table
ENTITY_SORT_INDEX_PREFIX = "catalog_entity_sort_"
# (name suffix, NULLS placement of the value): both read forwards and backwards serve the table's four orders
ORDERINGS = (("l", "NULLS LAST"), ("f", "NULLS FIRST"))


def indexed_properties(schema):
    """Keys of the top-level properties marked `"indexed": true` in a blueprint's schema."""
    return sorted(key for key, prop in ((schema or {}).get("properties") or {}).items()
                  if isinstance(prop, dict) and prop.get("indexed") is True)


def entity_indexes_follow(before_schema, after_schema):
    """In a blueprint writer's transaction: queue `entity_indexes_sync` when the change alters which properties are
    indexed (`before_schema` None for a new blueprint, `after_schema` None for a deleted one)."""
    if indexed_properties(before_schema) != indexed_properties(after_schema):
        from catalog.tasks import entity_indexes_sync_task
        from portal.outbox import outbox_enqueue

        outbox_enqueue(entity_indexes_sync_task)


def entity_sort_index_name(blueprint_id, key, suffix):
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{ENTITY_SORT_INDEX_PREFIX}{blueprint_id}_{digest}_{suffix}"


def _wanted():
    """{index name: (blueprint identifier, key, CREATE INDEX statement)} for every indexed property."""
    wanted = {}
    rows = Blueprint.objects.order_by("id").values_list("id", "identifier", "schema")
    for blueprint_id, identifier, schema in rows:
        for key in indexed_properties(schema):
            literal = "'" + key.replace("'", "''") + "'"  # keys are [A-Za-z0-9@_=-]+ (blueprint.json): no quote
            for suffix, nulls in ORDERINGS:
                name = entity_sort_index_name(blueprint_id, key, suffix)
                wanted[name] = (identifier, key, (
                    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {ENTITY_TABLE} "
                    f"((NULLIF(properties -> {literal}::text, 'null'::jsonb)) {nulls}, id) "
                    f"WHERE blueprint_id = {int(blueprint_id)}"))
    return wanted


def _existing():
    """{index name: (valid?, (blueprint identifier, key) from its comment)} of the sort indexes on the entity table."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname, i.indisvalid, obj_description(c.oid, 'pg_class') FROM pg_index i "
                       "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass AND c.relname LIKE %s",
                       [ENTITY_TABLE, ENTITY_SORT_INDEX_PREFIX.replace("_", r"\_") + "%"])
        return {name: (valid, _described(comment)) for name, valid, comment in cursor.fetchall()}


def _described(comment):
    try:
        found = json.loads(comment or "{}")
        return str(found.get("blueprint", "")), str(found.get("property", ""))
    except (ValueError, AttributeError):
        return "", ""


def entity_indexes_sync(*, actor):
    """Build the missing sort indexes, drop those no indexed property needs and rebuild invalid ones; one audit event
    per index built or dropped. Runs outside a transaction (CONCURRENTLY). Returns {"created": [...], "dropped":
    [...]} (index names)."""
    if connection.in_atomic_block:
        raise RuntimeError("entity_indexes_sync builds indexes CONCURRENTLY: call it outside a transaction")
    wanted, existing = _wanted(), _existing()
    stale = sorted(name for name, (valid, _) in existing.items() if name not in wanted or not valid)
    missing = sorted(name for name in wanted if name not in existing or not existing[name][0])
    done = {"created": [], "dropped": []}
    with database_owner(connection), connection.cursor() as cursor:
        for name in stale:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            done["dropped"].append(name)
            _audit(actor, audit_choices.ENTITY_INDEX_DROPPED, name, *existing[name][1])
        for name in missing:
            identifier, key, statement = wanted[name]
            cursor.execute(statement)
            cursor.execute(f"COMMENT ON INDEX {name} IS %s", [json.dumps({"blueprint": identifier, "property": key})])
            done["created"].append(name)
            _audit(actor, audit_choices.ENTITY_INDEX_CREATED, name, identifier, key)
    if done["created"] or done["dropped"]:
        logger.info("entity sort indexes: built %s, dropped %s", done["created"] or "none", done["dropped"] or "none")
    return done


def _audit(actor, verb, name, blueprint, key):
    """One event per index, in a transaction of its own right after its DDL (which no transaction may hold)."""
    action = audit_choices.AuditAction.CREATE if verb == audit_choices.ENTITY_INDEX_CREATED else audit_choices.AuditAction.DELETE
    with transaction.atomic():
        audit_record(actor=actor, verb=verb, action=action, resource_type="entity_index", identifier=name,
                     blueprint=blueprint, context={"index": name, "property": key})
