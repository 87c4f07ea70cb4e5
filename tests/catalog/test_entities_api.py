import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from catalog.models import Entity, Relation, Timer
from tests.factories import BlueprintFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def entity_blueprints(db):
    BlueprintFactory(identifier="Domain", title="Domain", schema={"properties": {}})
    BlueprintFactory(
        identifier="System", title="System", schema={"properties": {}},
        relations={"domain": {"target": "Domain", "required": True, "many": False}},
    )
    BlueprintFactory(
        identifier="Service", title="Service",
        schema={"properties": {
            "language": {"type": "string", "enum": ["Python", "Go"]},
            "replicas": {"type": "number", "minimum": 1},
            "tags": {"type": "array", "items": {"type": "string"}},
            "ttl": {"type": "string", "format": "timer"},
            "repo": {"type": "string", "format": "url"},
            "name": {"type": "string", "pattern": "^[a-z]+$"},
        }, "required": []},
        relations={"system": {"target": "System", "required": False, "many": False},
                   "dependsOn": {"target": "Service", "many": True}},
    )


def post(api, bp, data, query=""):
    return api.post(f"/v1/blueprints/{bp}/entities{query}", data, format="json")


def test_create_returns_port_shape(admin_api, entity_blueprints):
    post(admin_api, "Domain", {"identifier": "Orders", "title": "Orders"})
    post(admin_api, "System", {"identifier": "Cart", "relations": {"domain": "Orders"}})
    response = post(admin_api, "Service", {"identifier": "cart-svc", "title": "Cart", "team": [],
                                            "properties": {"language": "Go", "tags": ["a"]}, "relations": {"system": "Cart"}})
    assert response.status_code == 201, response.json()
    entity = response.json()["entity"]
    assert entity["identifier"] == "cart-svc" and entity["blueprint"] == "Service" and entity["title"] == "Cart"
    assert entity["relations"] == {"system": "Cart", "dependsOn": []}
    assert entity["properties"]["language"] == "Go" and entity["properties"]["replicas"] is None
    assert entity["createdBy"] == "admin@example.com" and entity["createdAt"].endswith("Z")
    event = AuditEvent.objects.get(verb="catalog.entity.created", identifier="cart-svc")
    assert event.diff["before"] is None and event.diff["after"]["relations"]["system"] == "Cart"


@pytest.mark.parametrize("body, path", [
    ({"identifier": "x", "properties": {"replicas": 0}}, "properties.replicas"),
    ({"identifier": "x", "properties": {"language": "Rust"}}, "properties.language"),
    ({"identifier": "x", "properties": {"tags": ["a", 3]}}, "properties.tags[1]"),
    ({"identifier": "x", "properties": {"repo": "not a url"}}, "properties.repo"),
    ({"identifier": "x", "properties": {"ttl": "tomorrow"}}, "properties.ttl"),
    ({"identifier": "x", "properties": {"name": "UPPER"}}, "properties.name"),
    ({"identifier": "x", "properties": {"unknown": 1}}, "properties"),
    ({"identifier": "x", "relations": {"nope": "a"}}, "relations.nope"),
    ({"identifier": "x", "relations": {"system": ["a", "b"]}}, "relations.system"),
    ({"identifier": "bad id"}, "identifier"),
    ({"identifier": "x", "team": "NoSuchTeam"}, "team"),
])
def test_invalid_entities_name_the_path_and_write_nothing(admin_api, entity_blueprints, body, path):
    response = post(admin_api, "Service", body)
    assert response.status_code == 422, response.json()
    assert response.json()["error"] == "invalid_request"
    assert response.json()["message"].startswith(path), response.json()["message"]
    assert not Entity.objects.filter(identifier="x").exists()
    assert not AuditEvent.objects.filter(resource_type="entity").exists()


def test_required_relation_and_missing_targets(admin_api, entity_blueprints):
    response = post(admin_api, "System", {"identifier": "Cart"})
    assert response.status_code == 422 and response.json()["message"].startswith("relations.domain")
    response = post(admin_api, "System", {"identifier": "Cart", "relations": {"domain": "Orders"}})
    assert response.status_code == 404 and response.json()["error"] == "not_found" and "Orders" in response.json()["message"]
    response = post(admin_api, "System", {"identifier": "Cart", "relations": {"domain": "Orders"}},
                    "?create_missing_related_entities=true")
    assert response.status_code == 201
    assert Entity.objects.get(identifier="Orders").is_stub


def test_upsert_replace_and_merge(admin_api, entity_blueprints):
    post(admin_api, "Service", {"identifier": "s", "properties": {"language": "Go", "replicas": 2}})
    conflict = post(admin_api, "Service", {"identifier": "s", "properties": {"language": "Go"}})
    assert conflict.status_code == 409 and conflict.json()["error"] == "conflict"
    merged = post(admin_api, "Service", {"identifier": "s", "properties": {"replicas": 5}}, "?upsert=true&merge=true")
    assert merged.status_code == 200, merged.json()
    assert merged.json()["entity"]["properties"]["language"] == "Go" and merged.json()["entity"]["properties"]["replicas"] == 5
    replaced = post(admin_api, "Service", {"identifier": "s", "properties": {"replicas": 7}}, "?upsert=true")
    assert replaced.status_code == 200
    assert replaced.json()["entity"]["properties"]["language"] is None
    event = AuditEvent.objects.filter(verb="catalog.entity.updated").first()
    assert event.diff["before"]["properties"] == {"language": "Go", "replicas": 5}
    assert event.diff["after"]["properties"] == {"replicas": 7}


def test_validation_only_writes_nothing(admin_api, entity_blueprints):
    response = post(admin_api, "Service", {"identifier": "s", "properties": {"language": "Go"}}, "?validation_only=true")
    assert response.status_code == 200 and response.json()["ok"] is True
    assert not Entity.objects.exists() and not AuditEvent.objects.filter(resource_type="entity").exists()


def test_get_put_patch_include_exclude(admin_api, entity_blueprints):
    post(admin_api, "Service", {"identifier": "a/b", "title": "AB", "properties": {"language": "Go", "replicas": 2}})
    got = admin_api.get("/v1/blueprints/Service/entities/a%2Fb?include=identifier&include=properties.language")
    assert got.status_code == 200, got.json()
    assert got.json()["entity"] == {"identifier": "a/b", "properties": {"language": "Go"}}
    got = admin_api.get("/v1/blueprints/Service/entities/a%2Fb?exclude=properties&exclude=relations")
    assert "properties" not in got.json()["entity"] and got.json()["entity"]["title"] == "AB"
    patched = admin_api.patch("/v1/blueprints/Service/entities/a%2Fb", {"properties": {"replicas": 4}}, format="json")
    assert patched.status_code == 200 and patched.json()["entity"]["properties"] == {**patched.json()["entity"]["properties"], "language": "Go", "replicas": 4}
    put = admin_api.put("/v1/blueprints/Service/entities/a%2Fb", {"title": "New", "properties": {"replicas": 1}}, format="json")
    assert put.status_code == 200 and put.json()["entity"]["properties"]["language"] is None
    assert admin_api.get("/v1/blueprints/Service/entities/nope").status_code == 404
    assert admin_api.put("/v1/blueprints/Service/entities/nope", {"properties": {}}, format="json").status_code == 404


def test_bulk_create_reports_per_index(admin_api, entity_blueprints):
    response = admin_api.post("/v1/blueprints/Service/entities/bulk", {"entities": [
        {"identifier": "ok1", "properties": {"language": "Go"}},
        {"identifier": "bad", "properties": {"replicas": -1}},
        {"identifier": "ok2", "relations": {"dependsOn": ["ok1"]}},
    ]}, format="json")
    assert response.status_code == 207, response.json()
    body = response.json()
    assert body["entities"] == [{"identifier": "ok1", "index": 0, "created": True}, {"identifier": "ok2", "index": 2, "created": True}]
    assert body["errors"][0]["index"] == 1 and body["errors"][0]["statusCode"] == 422
    assert body["errors"][0]["message"].startswith("properties.replicas")
    assert set(Entity.objects.values_list("identifier", flat=True)) == {"ok1", "ok2"}
    assert Relation.objects.get().target.identifier == "ok1"
    too_many = admin_api.post("/v1/blueprints/Service/entities/bulk", {"entities": [{"identifier": f"e{i}"} for i in range(21)]}, format="json")
    assert too_many.status_code == 422 and too_many.json()["message"].startswith("entities")


def test_delete_with_dependents(admin_api, entity_blueprints):
    post(admin_api, "Domain", {"identifier": "Orders"})
    post(admin_api, "System", {"identifier": "Cart", "relations": {"domain": "Orders"}})
    post(admin_api, "Service", {"identifier": "svc", "relations": {"system": "Cart"}})
    refused = admin_api.delete("/v1/blueprints/Domain/entities/Orders")
    assert refused.status_code == 409 and "System:Cart" in refused.json()["message"]
    response = admin_api.delete("/v1/blueprints/Domain/entities/Orders?delete_dependents=true")
    assert response.status_code == 200, response.json()
    assert not Entity.objects.filter(identifier__in=["Orders", "Cart"]).exists()
    svc = admin_api.get("/v1/blueprints/Service/entities/svc").json()["entity"]
    assert svc["relations"]["system"] is None
    verbs = list(AuditEvent.objects.filter(verb__in=["catalog.entity.deleted", "catalog.entity.updated"]).values_list("verb", "identifier"))
    assert ("catalog.entity.deleted", "Orders") in verbs and ("catalog.entity.deleted", "Cart") in verbs
    assert ("catalog.entity.updated", "svc") in verbs


def test_delete_clears_optional_relations_without_delete_dependents(admin_api, entity_blueprints):
    """Port: delete_dependents is for required relations; an optional relation to a deleted entity is cleared
    (issue 13: before, any relation pointing at the entity refused the delete with 409)."""
    post(admin_api, "Domain", {"identifier": "Orders"})
    post(admin_api, "System", {"identifier": "Cart", "relations": {"domain": "Orders"}})
    post(admin_api, "Service", {"identifier": "svc", "relations": {"system": "Cart"}})

    response = admin_api.delete("/v1/blueprints/System/entities/Cart")

    assert response.status_code == 200, response.json()
    assert not Entity.objects.filter(identifier="Cart").exists()
    assert admin_api.get("/v1/blueprints/Service/entities/svc").json()["entity"]["relations"]["system"] is None
    cleared = AuditEvent.objects.get(verb="catalog.entity.updated", identifier="svc")
    assert cleared.diff["before"]["relations"]["system"] == "Cart" and cleared.diff["after"]["relations"]["system"] is None
    assert AuditEvent.objects.filter(verb="catalog.entity.deleted", identifier="Cart").count() == 1


def test_bulk_delete(admin_api, entity_blueprints):
    for name in ("a", "b", "c"):
        post(admin_api, "Service", {"identifier": name})
    response = admin_api.post("/v1/blueprints/Service/bulk/entities/delete", {"entities": ["a", "b"]}, format="json")
    assert response.status_code == 200 and sorted(response.json()["deletedEntities"]) == ["a", "b"]
    assert list(Entity.objects.values_list("identifier", flat=True)) == ["c"]


def test_timers_follow_timer_properties(admin_api, entity_blueprints):
    post(admin_api, "Service", {"identifier": "s", "properties": {"ttl": "2030-01-01T00:00:00Z"}})
    timer = Timer.objects.get()
    assert timer.property == "ttl" and timer.expires_at.year == 2030
    admin_api.patch("/v1/blueprints/Service/entities/s", {"properties": {"ttl": "2031-01-01T00:00:00.000Z"}}, format="json")
    assert Timer.objects.get().expires_at.year == 2031
    admin_api.patch("/v1/blueprints/Service/entities/s", {"properties": {"ttl": None}}, format="json")
    assert not Timer.objects.exists()


def test_list_is_paginated_and_query_count_is_constant(admin_api, entity_blueprints):
    post(admin_api, "Service", {"identifier": "s0", "relations": {}})

    def count_queries():
        with CaptureQueriesContext(connection) as ctx:
            response = admin_api.get("/v1/blueprints/Service/entities")
        assert response.status_code == 200
        return len(ctx.captured_queries)

    few = count_queries()
    for i in range(1, 25):
        post(admin_api, "Service", {"identifier": f"s{i}", "relations": {"dependsOn": ["s0"]}})
    assert count_queries() == few
    first = admin_api.get("/v1/blueprints/Service/entities?limit=10").json()
    post(admin_api, "Service", {"identifier": "aaa-new"})
    second = admin_api.get(f"/v1/blueprints/Service/entities?limit=10&from={first['next']}").json()
    names = [e["identifier"] for e in first["entities"] + second["entities"]]
    assert len(names) == len(set(names)) == 20


def test_envelopes_for_bad_requests(admin_api, entity_blueprints):
    bad_json = admin_api.generic("POST", "/v1/blueprints/Service/entities", "{not json", content_type="application/json")
    assert bad_json.status_code == 400 and bad_json.json()["ok"] is False
    deep = {"identifier": "d", "properties": {}}
    node = deep
    for _ in range(100):
        node["x"] = {}
        node = node["x"]
    too_deep = post(admin_api, "Service", deep)
    assert too_deep.status_code == 422 and "nested deeper" in too_deep.json()["message"]
    huge = admin_api.generic("POST", "/v1/blueprints/Service/entities", "x" * (1024 * 1024 + 10), content_type="application/json")
    assert huge.status_code == 413 and huge.json()["error"] == "payload_too_large"
    response = admin_api.get("/v1/blueprints")
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-ratelimit-period"} <= set(response.headers)


def test_an_entity_named_search_is_reachable(admin_api, entity_blueprints):
    assert post(admin_api, "Service", {"identifier": "search", "properties": {"language": "Go"}}).status_code == 201
    got = admin_api.get("/v1/blueprints/Service/entities/search")
    assert got.status_code == 200 and got.json()["entity"]["identifier"] == "search"
    patched = admin_api.patch("/v1/blueprints/Service/entities/search", {"properties": {"replicas": 2}}, format="json")
    assert patched.status_code == 200 and patched.json()["entity"]["properties"]["replicas"] == 2
    assert admin_api.post("/v1/blueprints/Service/entities/search", {}, format="json").json()["entities"][0]["identifier"] == "search"
    assert admin_api.delete("/v1/blueprints/Service/entities/search").status_code == 200
