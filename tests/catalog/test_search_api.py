"""POST /v1/entities/search and POST /v1/blueprints/{bp}/entities/search."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Blueprint
from catalog.selectors.search import search_queryset
from catalog.services.entities import entities_write
from catalog.services.permissions import blueprint_permissions_update
from portal.actor import Actor
from tests.factories import BlueprintFactory, EntityFactory, TeamFactory, UserFactory
from tests.support.api import api_for

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system()


@pytest.fixture
def search_catalog(db):
    TeamFactory(name="Platform")
    BlueprintFactory(identifier="System", title="System",
                     schema={"properties": {"tier": {"type": "number"}}})
    BlueprintFactory(
        identifier="Service", title="Service",
        schema={"properties": {"language": {"type": "string"}, "replicas": {"type": "number"}}},
        relations={"system": {"target": "System", "required": False, "many": False}},
        mirrorProperties={"systemTier": {"path": "system.tier"}},
    )
    system = Blueprint.objects.get(identifier="System")
    EntityFactory(blueprint=system, identifier="Cart", title="Cart", properties={"tier": 1})


def services(*items):
    service = Blueprint.objects.get(identifier="Service")
    writes = entities_write(actor=SYSTEM, blueprint=service, items=list(items))
    assert all(w.error is None for w in writes), [w.error for w in writes]


def search(api, body, query=""):
    return api.post(f"/v1/entities/search{query}", body, format="json")


def page(api, body, blueprint="Service"):
    return api.post(f"/v1/blueprints/{blueprint}/entities/search", body, format="json")


GO = {"combinator": "and", "rules": [{"property": "$blueprint", "operator": "=", "value": "Service"},
                                     {"property": "language", "operator": "=", "value": "Go"}]}


def test_search_returns_port_envelope(admin_api, search_catalog):
    services({"identifier": "cart-api", "title": "Cart API", "team": ["Platform"],
              "properties": {"language": "Go", "replicas": 2}, "relations": {"system": "Cart"}},
             {"identifier": "ledger", "properties": {"language": "Python"}})
    response = search(admin_api, GO)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["ok"] is True and body["matchingBlueprints"] == ["Service"]
    (found,) = body["entities"]
    assert found["identifier"] == "cart-api" and found["blueprint"] == "Service" and found["title"] == "Cart API"
    assert found["team"] == ["Platform"] and found["relations"] == {"system": "Cart"}
    assert found["properties"] == {"language": "Go", "replicas": 2, "systemTier": 1}
    assert found["createdAt"].endswith("Z") and found["createdBy"] == "system"


def test_search_across_blueprints_reports_matching_blueprints(admin_api, search_catalog):
    services({"identifier": "cart-api", "properties": {"language": "Go"}})
    response = search(admin_api, {"combinator": "or", "rules": [{"property": "$identifier", "operator": "beginsWith",
                                                                 "value": "cart"}]})
    assert response.status_code == 200
    assert response.json()["matchingBlueprints"] == ["Service", "System"]
    assert sorted(e["identifier"] for e in response.json()["entities"]) == ["Cart", "cart-api"]


def test_search_include_exclude_and_limit(admin_api, search_catalog):
    services(*({"identifier": f"svc-{i}", "properties": {"language": "Go", "replicas": i}} for i in range(1, 4)))
    response = search(admin_api, GO, "?include=identifier&include=properties.replicas")
    assert response.status_code == 200
    assert response.json()["entities"] == [{"identifier": f"svc-{i}", "properties": {"replicas": i}} for i in range(1, 4)]
    response = search(admin_api, GO, "?exclude=properties&exclude=relations&limit=2")
    entities = response.json()["entities"]
    assert [e["identifier"] for e in entities] == ["svc-1", "svc-2"]
    assert all("properties" not in e and "relations" not in e and "title" in e for e in entities)
    for bad in ("0", "10001", "many"):
        response = search(admin_api, GO, f"?limit={bad}")
        assert response.status_code == 422 and response.json()["message"].startswith("limit: ")


@pytest.mark.parametrize("body, path", [
    ({"combinator": "and", "rules": [{"property": "language", "operator": "=", "value": "Go"},
                                     {"property": "$title", "operator": "=", "value": "x"},
                                     {"property": "nope", "operator": "=", "value": 1}]}, "rules[2].property"),
    ({"combinator": "and", "rules": [{"combinator": "or", "rules": [{"property": "language", "operator": "~", "value": 1}]}]},
     "rules[0].rules[0].operator"),
    ({"combinator": "nand", "rules": []}, "combinator"),
    ({"rules": "all"}, "combinator"),
    ({"combinator": "and", "rules": [{"property": "$createdAt", "operator": "between", "value": {"from": "soon"}}]},
     "rules[0].value.from"),
])
def test_search_rejects_bad_rules_with_the_path(admin_api, search_catalog, body, path):
    response = search(admin_api, body)
    assert response.status_code == 422, response.json()
    assert response.json()["ok"] is False and response.json()["error"] == "invalid_request"
    assert response.json()["message"].startswith(f"{path}: "), response.json()["message"]


def test_search_requires_authentication(anon_api, search_catalog):
    assert search(anon_api, GO).status_code == 401
    assert page(anon_api, {}).status_code == 401


def test_search_filters_by_permission(search_catalog):
    services({"identifier": "cart-api", "team": ["Platform"], "properties": {"language": "Go"}},
             {"identifier": "other", "properties": {"language": "Go"}})
    member = UserFactory(email="dev@example.com", teams=["Platform"])
    blueprint_permissions_update(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="Service"),
                                 data={"entities": {"read": {"roles": [], "ownedByTeam": True}}})
    api = api_for(member)
    assert [e["identifier"] for e in search(api, GO).json()["entities"]] == ["cart-api"]
    assert [e["identifier"] for e in page(api, {}).json()["entities"]] == ["cart-api"]
    blueprint_permissions_update(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="Service"),
                                 data={"entities": {"read": {"ownedByTeam": False}}})
    api = api_for(UserFactory(email="late@example.com", teams=["Platform"]))
    assert search(api, GO).json()["entities"] == [] and page(api, {}).json()["entities"] == []


def test_blueprint_search_pages_with_a_cursor(admin_api, search_catalog):
    services(*({"identifier": f"svc-{i:02d}", "properties": {"language": "Go" if i % 2 else "Python", "replicas": i}}
               for i in range(1, 8)))
    response = page(admin_api, {})
    assert response.status_code == 200
    assert response.json()["next"] is None and len(response.json()["entities"]) == 7
    query = {"combinator": "and", "rules": [{"property": "language", "operator": "=", "value": "Go"}]}
    first = page(admin_api, {"query": query, "limit": 2, "include": ["identifier"]}).json()
    assert first["ok"] is True and first["entities"] == [{"identifier": "svc-01"}, {"identifier": "svc-03"}]
    second = page(admin_api, {"query": query, "limit": 2, "include": ["identifier"], "from": first["next"]}).json()
    assert second == {"ok": True, "entities": [{"identifier": "svc-05"}, {"identifier": "svc-07"}], "next": None}
    third = page(admin_api, {"limit": 3, "from": first["next"], "exclude": ["properties", "relations"]}).json()
    assert [e["identifier"] for e in third["entities"]] == ["svc-04", "svc-05", "svc-06"]
    assert "properties" not in third["entities"][0] and "title" in third["entities"][0] and third["next"]


def test_blueprint_search_is_stable_when_rows_are_inserted_between_pages(admin_api, search_catalog):
    services(*({"identifier": f"svc-{i:02d}", "properties": {"language": "Go"}} for i in range(1, 7)))
    seen, cursor, inserted = [], None, 0
    while True:
        body = {"limit": 2, "include": ["identifier"], **({"from": cursor} if cursor else {})}
        response = page(admin_api, body).json()
        seen += [e["identifier"] for e in response["entities"]]
        cursor = response["next"]
        if cursor is None:
            break
        if inserted < 2:  # a writer adds entities (sorting before and after the others by identifier)
            inserted += 1
            services({"identifier": f"aaa-{inserted}", "properties": {"language": "Go"}},
                     {"identifier": f"zzz-{inserted}", "properties": {"language": "Go"}})
        assert len(seen) < 20
    originals = [f"svc-{i:02d}" for i in range(1, 7)]
    assert [s for s in seen if s.startswith("svc")] == originals  # none skipped, none repeated, in order
    assert len(seen) == len(set(seen)) == 10  # rows created during the walk come after the originals


@pytest.mark.parametrize("body, status, path", [
    ({"query": {"combinator": "and", "rules": [{"property": "language", "operator": "equals", "value": "Go"}]}},
     422, "query.rules[0].operator"),
    ({"query": {"combinator": "and", "rules": [{"property": "tier", "operator": "=", "value": 1}]}},
     422, "query.rules[0].property"),  # System's property, not Service's
    ({"query": "language = Go"}, 422, "query"),
    ({"limit": 1001}, 422, "limit"),
    ({"limit": "ten"}, 422, "limit"),
    ({"from": "%%%"}, 422, "from"),
    ({"from": 12}, 422, "from"),
    ({"include": "identifier"}, 422, "include"),
    ({"sort": "identifier"}, 422, "sort"),
])
def test_blueprint_search_rejects_bad_bodies(admin_api, search_catalog, body, status, path):
    response = page(admin_api, body)
    assert response.status_code == status, response.json()
    assert response.json()["error"] == "invalid_request"
    assert response.json()["message"].startswith(f"{path}: "), response.json()["message"]


def test_blueprint_search_of_unknown_blueprint_is_404(admin_api, search_catalog):
    response = page(admin_api, {}, blueprint="Nope")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def _count_queries(api, method):
    with CaptureQueriesContext(connection) as ctx:
        response = method(api)
    assert response.status_code == 200, response.json()
    return len(ctx.captured_queries), len(response.json()["entities"])


@pytest.mark.parametrize("route", ["search", "page"])
def test_query_count_does_not_grow_with_rows(search_catalog, route):
    api = api_for(UserFactory(email="dev@example.com", teams=["Platform"]))
    rules = {"combinator": "and", "rules": [{"property": "$blueprint", "operator": "=", "value": "Service"},
                                            {"property": "language", "operator": "=", "value": "Go"},
                                            {"property": "systemTier", "operator": "=", "value": 1}]}
    method = (lambda a: search(a, rules)) if route == "search" else (lambda a: page(a, {"query": rules}))
    services({"identifier": "svc-0", "team": ["Platform"], "properties": {"language": "Go"}, "relations": {"system": "Cart"}})
    method(api)  # warm: what a long-running worker has read (the blueprint's definition) and prepared
    few, rows = _count_queries(api, method)
    assert rows == 1
    services(*({"identifier": f"svc-{i}", "team": ["Platform"], "properties": {"language": "Go"},
                "relations": {"system": "Cart"}} for i in range(1, 20)))
    services(*({"identifier": f"svc-{i}", "properties": {"language": "Go"}, "relations": {"system": "Cart"}}
               for i in range(20, 30)))
    many, rows = _count_queries(api, method)
    assert rows == 30
    assert many == few


def test_a_search_filters_in_exactly_one_query(search_catalog):
    services({"identifier": "a", "properties": {"language": "Go"}, "relations": {"system": "Cart"}},
             {"identifier": "b", "properties": {"language": "Go"}})
    member = UserFactory(email="dev@example.com")
    queryset = search_queryset({"combinator": "and", "rules": [
        {"property": "language", "operator": "=", "value": "Go"},
        {"property": "systemTier", "operator": "=", "value": 1},
        {"operator": "relatedTo", "blueprint": "System", "value": "Cart", "direction": "downstream"},
    ]}, user=member, blueprint=Blueprint.objects.get(identifier="Service"))
    with CaptureQueriesContext(connection) as ctx:
        ids = list(queryset.values_list("id", flat=True))
    assert len(ids) == 1 and len(ctx.captured_queries) == 1
