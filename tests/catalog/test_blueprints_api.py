import pytest

from audit.models import AuditEvent
from catalog.models import Blueprint, Entity

pytestmark = pytest.mark.django_db

SERVICE = {
    "identifier": "Service",
    "title": "Service",
    "icon": "Github",
    "schema": {
        "properties": {
            "language": {"type": "string", "enum": ["Python", "Go"], "enumColors": {"Python": "blue", "Go": "green"}},
            "replicas": {"type": "number", "minimum": 1, "default": 1},
            "repo": {"type": "string", "format": "url"},
            "expires": {"type": "string", "format": "timer"},
        },
        "required": ["language"],
    },
    "relations": {},
}


def create(api, data=SERVICE):
    return api.post("/v1/blueprints", data, format="json")


def test_create_get_list(admin_api):
    response = create(admin_api)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["ok"] is True
    assert body["blueprint"]["identifier"] == "Service"
    assert body["blueprint"]["createdBy"] == "admin@example.com"
    assert body["blueprint"]["createdAt"].endswith("Z")
    event = AuditEvent.objects.get(verb="catalog.blueprint.created")
    assert event.identifier == "Service" and event.origin == "API" and event.diff["after"]["schema"] == SERVICE["schema"]
    assert admin_api.get("/v1/blueprints/Service").json()["blueprint"]["title"] == "Service"
    listed = admin_api.get("/v1/blueprints").json()
    assert [bp["identifier"] for bp in listed["blueprints"]] == ["Service"]


@pytest.mark.parametrize(
    "change, path",
    [
        ({"schema": {"properties": {"x": {"type": "strin"}}}}, "schema.properties.x.type"),
        ({"schema": {"properties": {"x": {"type": "string", "format": "colour"}}}}, "schema.properties.x.format"),
        ({"schema": {"properties": {"x": {"type": "number", "enum": ["a"]}}}}, "schema.properties.x.enum[0]"),
        ({"schema": {"properties": {"x": {"type": "string", "enum": ["a"], "enumColors": {"b": "red"}}}}},
         "schema.properties.x.enumColors"),
        ({"schema": {"properties": {}, "required": ["nope"]}}, "schema.required"),
        ({"relations": {"owner": {"target": "Nowhere"}}}, "relations.owner.target"),
        ({"mirrorProperties": {"m": {"path": "nothing.$title"}}}, "mirrorProperties.m.path"),
        ({"calculationProperties": {"c": {"calculation": ".properties | ((", "type": "string"}}},
         "calculationProperties.c.calculation"),
        ({"identifier": "bad id!"}, "identifier"),
        ({"title": ""}, "title"),
    ],
)
def test_bad_definitions_name_the_field_and_write_nothing(admin_api, change, path):
    response = create(admin_api, {**SERVICE, **change})
    assert response.status_code == 422, response.json()
    body = response.json()
    assert body["ok"] is False and body["error"] == "invalid_request"
    assert body["message"].startswith(path), body["message"]
    assert not Blueprint.objects.exists()
    assert not AuditEvent.objects.filter(resource_type="blueprint").exists()


def test_self_relation_and_mirror_and_calculation(admin_api):
    assert create(admin_api).status_code == 201
    response = create(admin_api, {
        "identifier": "Deployment",
        "title": "Deployment",
        "schema": {"properties": {"version": {"type": "string"}}},
        "relations": {"service": {"target": "Service", "required": True, "many": False},
                      "previous": {"target": "Deployment", "many": False}},
        "mirrorProperties": {"serviceLanguage": {"path": "service.language"}, "serviceTitle": {"path": "service.$title"}},
        "calculationProperties": {"label": {"calculation": '.identifier + "@" + (.properties.version // "?")', "type": "string"}},
    })
    assert response.status_code == 201, response.json()
    admin_api.post("/v1/blueprints/Service/entities", {"identifier": "cart", "title": "Cart", "properties": {"language": "Go"}}, format="json")
    created = admin_api.post("/v1/blueprints/Deployment/entities",
                             {"identifier": "d1", "properties": {"version": "1.2"}, "relations": {"service": "cart"}}, format="json")
    assert created.status_code == 201, created.json()
    properties = created.json()["entity"]["properties"]
    assert properties["serviceLanguage"] == "Go"
    assert properties["serviceTitle"] == "Cart"
    assert properties["label"] == "d1@1.2"


def test_conflict_and_not_found(admin_api):
    create(admin_api)
    again = create(admin_api)
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    missing = admin_api.get("/v1/blueprints/Nope")
    assert missing.status_code == 404 and missing.json() == {"ok": False, "error": "not_found", "message": missing.json()["message"]}


def test_patch_and_put(admin_api):
    create(admin_api)
    patched = admin_api.patch("/v1/blueprints/Service", {"title": "Services", "icon": "Cloud"}, format="json")
    assert patched.status_code == 200, patched.json()
    assert patched.json()["blueprint"]["title"] == "Services"
    assert patched.json()["blueprint"]["schema"] == SERVICE["schema"]
    put = admin_api.put("/v1/blueprints/Service", {"title": "S", "schema": {"properties": {}}}, format="json")
    assert put.status_code == 200 and put.json()["blueprint"]["schema"]["properties"] == {}
    assert AuditEvent.objects.filter(verb="catalog.blueprint.updated").count() == 2


def test_change_that_would_invalidate_entities_is_refused(admin_api):
    create(admin_api)
    admin_api.post("/v1/blueprints/Service/entities", {"identifier": "a", "properties": {"language": "Go", "replicas": 3}}, format="json")
    admin_api.post("/v1/blueprints/Service/entities", {"identifier": "b", "properties": {"language": "Go", "replicas": 1}}, format="json")
    schema = {"properties": {**SERVICE["schema"]["properties"], "replicas": {"type": "string"}}, "required": ["language"]}
    response = admin_api.patch("/v1/blueprints/Service", {"schema": schema}, format="json")
    assert response.status_code == 422
    assert "schema.properties.replicas" in response.json()["message"] and "2 entities" in response.json()["message"]
    required = {"properties": {**SERVICE["schema"]["properties"], "owner": {"type": "string"}}, "required": ["language", "owner"]}
    response = admin_api.patch("/v1/blueprints/Service", {"schema": required}, format="json")
    assert response.status_code == 422 and "2 entities" in response.json()["message"]
    assert Blueprint.objects.get().version == 1


def test_removing_a_property_migrates_its_values(admin_api):
    create(admin_api)
    admin_api.post("/v1/blueprints/Service/entities", {"identifier": "a", "properties": {"language": "Go", "repo": "https://x.io/a"}}, format="json")
    schema = {"properties": {k: v for k, v in SERVICE["schema"]["properties"].items() if k != "repo"}, "required": ["language"]}
    response = admin_api.patch("/v1/blueprints/Service", {"schema": schema}, format="json")
    assert response.status_code == 200, response.json()
    assert "repo" not in Entity.objects.get().properties
    event = AuditEvent.objects.filter(verb="catalog.blueprint.updated").get()
    assert "dropped property 'repo' from 1 entities" in event.message


def test_delete_refused_while_entities_exist(admin_api):
    create(admin_api)
    admin_api.post("/v1/blueprints/Service/entities", {"identifier": "a", "properties": {"language": "Go"}}, format="json")
    refused = admin_api.delete("/v1/blueprints/Service")
    assert refused.status_code == 409 and "1 entities" in refused.json()["message"]
    assert admin_api.delete("/v1/blueprints/Service?delete_entities=true").json() == {"ok": True}
    assert not Blueprint.objects.exists() and not Entity.objects.exists()


def test_entities_count(admin_api):
    create(admin_api)
    for i in range(3):
        admin_api.post("/v1/blueprints/Service/entities", {"identifier": f"s{i}", "properties": {"language": "Go"}}, format="json")
    assert admin_api.get("/v1/blueprints/Service/entities-count").json() == {"ok": True, "count": 3}


def test_members_cannot_create_blueprints(member_api, anon_api):
    response = create(member_api)
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    response = create(anon_api)
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"
