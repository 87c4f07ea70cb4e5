"""Sort indexes of indexed properties (catalog/services/entity_indexes.py): the `indexed` keyword is checked, a
blueprint change builds and drops the indexes after its commit, each one audited, and every order a catalog table
pages in is read from an index instead of sorting the blueprint."""
import json

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.database_role import database_owner
from audit.models import AuditEvent
from catalog.models import Blueprint
from catalog.selectors.search import search_queryset
from catalog.selectors.sorted_pages import Sort, sorted_page
from catalog.services.entity_indexes import ENTITY_SORT_INDEX_PREFIX, entity_indexes_sync
from catalog.services.table_statistics import catalog_tables_analyze
from portal.actor import Actor

BUILD = {"identifier": "Build", "title": "Build", "schema": {"properties": {
    "finishedAt": {"type": "string", "format": "date-time", "indexed": True},
    "duration": {"type": "number", "indexed": True},
    "branch": {"type": "string"},
}}}


def sort_indexes():
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname, i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                       "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'catalog_entity'::regclass "
                       "AND c.relname LIKE %s ORDER BY 1", [ENTITY_SORT_INDEX_PREFIX + "%"])
        return {name: (valid, definition) for name, valid, definition in cursor.fetchall()}


@pytest.fixture(autouse=True)
def no_sort_index_left_behind():
    """The indexes a test built outlive its data (a flush truncates, it does not drop): gone for the tests after."""
    yield
    if connection.connection is not None:
        with database_owner(connection), connection.cursor() as cursor:
            for name in sort_indexes():
                cursor.execute(f"DROP INDEX IF EXISTS {name}")


@pytest.mark.django_db
@pytest.mark.parametrize("prop, path", [
    ({"type": "object", "indexed": True}, "schema.properties.x.indexed"),
    ({"type": "array", "indexed": True}, "schema.properties.x.indexed"),
    ({"type": "string", "indexed": "yes"}, "schema.properties.x.indexed"),
    ({"type": "object", "properties": {"y": {"type": "string", "indexed": True}}}, "schema.properties.x.properties.y.indexed"),
])
def test_indexed_is_for_top_level_scalars(admin_api, prop, path):
    response = admin_api.post("/v1/blueprints", {"identifier": "B", "title": "B", "schema": {"properties": {"x": prop}}},
                              format="json")
    assert response.status_code == 422, response.json()
    assert response.json()["message"].startswith(path), response.json()


@pytest.mark.django_db
def test_indexed_is_not_part_of_what_entities_must_be(admin_api):
    assert admin_api.post("/v1/blueprints", BUILD, format="json").status_code == 201
    made = admin_api.post("/v1/blueprints/Build/entities", {"identifier": "b1", "properties": {
        "finishedAt": "2026-01-02T03:04:05Z", "duration": 12}}, format="json")
    assert made.status_code == 201, made.json()
    refused = admin_api.post("/v1/blueprints/Build/entities", {"identifier": "b2", "properties": {"duration": "x"}},
                             format="json")
    assert refused.status_code == 422 and "duration" in refused.json()["message"]


def fill(blueprint, count):
    """`count` entities, a tenth without a finishedAt, then ANALYZE: a table the planner knows. ANALYZE runs as the
    owner: as the app's role PostgreSQL skips the table with a mere warning, and the plans then follow whatever
    statistics an earlier test left."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO catalog_entity (blueprint_id, identifier, title, icon, properties, created_at, updated_at, "
            "created_by, updated_by, run_id, is_stub, datasource, aggregates) "
            "SELECT %s, 'b' || n, 'b' || n, '', CASE WHEN n %% 10 = 0 THEN '{}'::jsonb ELSE jsonb_build_object("
            "'finishedAt', to_char(timestamptz '2026-01-01' + n * interval '1 minute', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), 'duration', n %% 97) END, now(), now(), 'test', 'test', '', false, '', "
            "'{}'::jsonb FROM generate_series(1, %s) n", [blueprint.pk, count])
    catalog_tables_analyze(["catalog_entity"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'catalog_entity'::regclass")
        assert cursor.fetchone()[0] >= count, "ANALYZE did not run: the plans below would follow stale statistics"


def plan_of_page(blueprint, sort, **cursor):
    queryset = search_queryset({"combinator": "and", "rules": []}, user=None, blueprint=blueprint)
    with CaptureQueriesContext(connection) as captured:
        page = sorted_page(queryset, sort=sort, limit=50, **cursor)
    with connection.cursor() as cursor_:
        cursor_.execute("EXPLAIN (FORMAT JSON) " + captured.captured_queries[-1]["sql"])
        return page, json.dumps(cursor_.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_a_blueprint_change_builds_and_drops_its_sort_indexes(admin_api, eager):
    assert admin_api.post("/v1/blueprints", BUILD, format="json").status_code == 201
    built = sort_indexes()  # the outbox ran the sync after the commit (`eager`: tasks run at once)
    bp = Blueprint.objects.get(identifier="Build")
    assert len(built) == 4 and all(valid for valid, _ in built.values())
    assert all(f"WHERE (blueprint_id = {bp.pk})" in definition for _, definition in built.values())
    assert {"NULLS FIRST" in definition for _, definition in built.values()} == {True, False}
    created = AuditEvent.objects.filter(verb="catalog.entity_index.created", blueprint="Build")
    assert sorted(e.context["index"] for e in created) == sorted(built)
    assert {e.context["property"] for e in created} == {"finishedAt", "duration"} and {e.blueprint for e in created} == {"Build"}

    fill(bp, 3000)
    for key in ("finishedAt", "-finishedAt", "duration", "-duration"):
        sort = Sort.parse(key)
        page, plan = plan_of_page(bp, sort)
        assert ENTITY_SORT_INDEX_PREFIX in plan and '"Sort"' not in plan, (key, plan)
        following, plan = plan_of_page(bp, sort, after=page.next_cursor)
        assert ENTITY_SORT_INDEX_PREFIX in plan and '"Sort"' not in plan, (key, "next", plan)
        _, plan = plan_of_page(bp, sort, before=following.previous_cursor)
        assert ENTITY_SORT_INDEX_PREFIX in plan and '"Sort"' not in plan, (key, "previous", plan)

    schema = json.loads(json.dumps(BUILD["schema"]))
    schema["properties"]["duration"].pop("indexed")
    assert admin_api.patch("/v1/blueprints/Build", {"schema": schema}, format="json").status_code == 200
    kept = sort_indexes()
    assert len(kept) == 2 and set(kept) < set(built)
    # Build's own: the first sync also dropped what earlier tests' blueprints left (their rows flushed, not indexes)
    dropped = AuditEvent.objects.filter(verb="catalog.entity_index.deleted", blueprint="Build")
    assert sorted(e.context["index"] for e in dropped) == sorted(set(built) - set(kept))
    assert {e.context["property"] for e in dropped} == {"duration"}

    assert admin_api.delete("/v1/blueprints/Build?delete_entities=true").status_code == 200
    assert sort_indexes() == {}


@pytest.mark.django_db(transaction=True)
def test_the_sync_repairs_an_invalid_index_and_is_idempotent(admin_api, eager):
    assert admin_api.post("/v1/blueprints", BUILD, format="json").status_code == 201
    name = sorted(sort_indexes())[0]
    with database_owner(connection), connection.cursor() as cursor:  # what a build cut short by a killed worker leaves
        cursor.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [name])
    assert sort_indexes()[name][0] is False
    done = entity_indexes_sync(actor=Actor.system())
    assert done == {"created": [name], "dropped": [name]}
    assert all(valid for valid, _ in sort_indexes().values())
    assert entity_indexes_sync(actor=Actor.system()) == {"created": [], "dropped": []}
    with pytest.raises(RuntimeError, match="outside a transaction"), transaction.atomic():
        entity_indexes_sync(actor=Actor.system())


@pytest.mark.django_db(transaction=True)
def test_a_change_that_leaves_the_indexed_set_alone_queues_nothing(admin_api):
    from portal.models import OutboxMessage

    assert admin_api.post("/v1/blueprints", BUILD, format="json").status_code == 201
    queued = OutboxMessage.objects.filter(task="catalog.tasks.entity_indexes_sync_task").count()
    assert queued == 1
    assert admin_api.patch("/v1/blueprints/Build", {"title": "Builds"}, format="json").status_code == 200
    assert OutboxMessage.objects.filter(task="catalog.tasks.entity_indexes_sync_task").count() == queued


@pytest.mark.django_db(transaction=True)
def test_the_starter_indexes_when_deployments_finished(eager):
    from io import StringIO

    from django.core.management import call_command

    call_command("load_starter", stdout=StringIO())
    deployment = Blueprint.objects.get(identifier="deployment")
    built = {name: definition for name, (valid, definition) in sort_indexes().items() if valid}
    assert len(built) == 2 and all(f"WHERE (blueprint_id = {deployment.pk})" in d and "'finishedAt'" in d
                                   for d in built.values())
