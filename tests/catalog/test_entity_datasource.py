"""Entity datasources (issue 13): what an Ocean integration writes carries its User-Agent as datasource on
every write path; `$datasource` is searchable; datasource-entities pages through an integration's own
entities written before a time, and nobody else's."""
import pytest

from audit.models import AuditEvent
from catalog.models import Entity
from portal.actor import Actor
from tests.factories import BlueprintFactory, EntityFactory

pytestmark = pytest.mark.django_db
MINE = "port-ocean/fake/0.1.0/my-fake/exporter"
OTHER = "port-ocean/fake/0.1.0/other-fake/exporter"


def as_ocean(agent=MINE):
    return {"HTTP_USER_AGENT": agent}


@pytest.fixture
def datasource_catalog(db):
    BlueprintFactory(identifier="team", title="Team", schema={"properties": {}})
    return BlueprintFactory(
        identifier="service", title="Service", schema={"properties": {"size": {"type": "number"}}},
        relations={"team": {"target": "team", "required": False, "many": False},
                   "uses": {"target": "service", "required": False, "many": True}})


def datasource(identifier, blueprint="service"):
    return Entity.objects.get(blueprint__identifier=blueprint, identifier=identifier).datasource


def test_every_api_write_path_records_the_writers_datasource(admin_api, datasource_catalog):
    single = admin_api.post("/v1/blueprints/service/entities", {"identifier": "a"}, format="json", **as_ocean())
    bulk = admin_api.post("/v1/blueprints/service/entities/bulk?upsert=true&merge=true",
                          {"entities": [{"identifier": "b"}, {"identifier": "c"}]}, format="json", **as_ocean())
    person = admin_api.post("/v1/blueprints/service/entities", {"identifier": "d"}, format="json",
                            HTTP_USER_AGENT="curl/8.0")

    assert single.status_code == 201 and bulk.status_code == 200 and person.status_code == 201
    assert [datasource(i) for i in "abcd"] == [MINE, MINE, MINE, ""]
    merged = admin_api.post("/v1/blueprints/service/entities?upsert=true&merge=true",
                            {"identifier": "d", "properties": {"size": 2}}, format="json", **as_ocean(OTHER))
    assert merged.status_code == 200 and datasource("d") == OTHER
    patched = admin_api.patch("/v1/blueprints/service/entities/a", {"properties": {"size": 3}}, format="json")
    assert patched.status_code == 200 and datasource("a") == ""  # the last writer owns it


def test_an_ocean_write_names_the_integration_in_its_audit_event(admin_api, datasource_catalog):
    admin_api.post("/v1/blueprints/service/entities", {"identifier": "a"}, format="json", **as_ocean())

    event = AuditEvent.objects.get(verb="catalog.entity.created", identifier="a")
    assert event.context["datasource"] == MINE and event.actor_type == "client"


def test_a_user_agent_that_is_not_oceans_is_no_datasource(admin_api, datasource_catalog):
    admin_api.post("/v1/blueprints/service/entities", {"identifier": "a"}, format="json",
                   HTTP_USER_AGENT="port-ocean/x/1.0")

    assert datasource("a") == ""


@pytest.mark.parametrize("rules, expected", [
    ([{"property": "$datasource", "operator": "contains", "value": "port-ocean/fake/"},
      {"property": "$datasource", "operator": "contains", "value": "/my-fake/exporter"}], ["a"]),
    ([{"property": "$datasource", "operator": "beginsWith", "value": "port-ocean/fake/"}], ["a", "b"]),
    ([{"property": "$datasource", "operator": "endsWith", "value": "/other-fake/exporter"}], ["b"]),
    ([{"property": "$datasource", "operator": "=", "value": ""}], ["c"]),
])
def test_datasource_is_a_searchable_meta_property(admin_api, datasource_catalog, rules, expected):
    EntityFactory(blueprint=datasource_catalog, actor=Actor(origin="API", datasource=MINE), identifier="a")
    EntityFactory(blueprint=datasource_catalog, actor=Actor(origin="API", datasource=OTHER), identifier="b")
    EntityFactory(blueprint=datasource_catalog, identifier="c")

    response = admin_api.post("/v1/entities/search", {"combinator": "and", "rules": rules}, format="json")

    assert response.status_code == 200, response.json()
    assert sorted(e["identifier"] for e in response.json()["entities"]) == expected


def test_oceans_stale_entity_search_with_many_datasource_rules_answers_200(admin_api, datasource_catalog):
    """Ocean's search_batch_entities: an OR of (identifier, blueprint) pairs, with its two $datasource rules
    appended to the top level, and the pairs batched well past 10 rules."""
    for i in range(12):
        EntityFactory(blueprint=datasource_catalog, actor=Actor(origin="API", datasource=MINE), identifier=f"s{i}")
    pairs = [{"combinator": "and", "rules": [{"property": "$identifier", "operator": "=", "value": f"s{i}"},
                                             {"property": "$blueprint", "operator": "=", "value": "service"}]}
             for i in range(12)]
    datasource_rules = [{"property": "$datasource", "operator": "contains", "value": "port-ocean/fake/"},
                        {"property": "$datasource", "operator": "contains", "value": "/my-fake/exporter"}] * 6
    query = {"combinator": "and", "rules": [{"combinator": "or", "rules": pairs}, *datasource_rules]}

    response = admin_api.post("/v1/entities/search?exclude_calculated_properties=true&include=blueprint"
                              "&include=identifier", query, format="json", **as_ocean())

    assert response.status_code == 200, response.json()
    assert len(response.json()["entities"]) == 12


def test_datasource_entities_pages_through_an_integrations_own_entities_written_before_a_time(admin_api, datasource_catalog):
    admin_api.post("/v1/blueprints/team/entities", {"identifier": "t1"}, format="json", **as_ocean())
    for i in range(3):
        admin_api.post("/v1/blueprints/service/entities", {"identifier": f"m{i}", "relations": {"team": "t1"}},
                       format="json", **as_ocean())
    admin_api.post("/v1/blueprints/service/entities", {"identifier": "theirs"}, format="json", **as_ocean(OTHER))
    admin_api.post("/v1/blueprints/service/entities", {"identifier": "persons"}, format="json")
    cutoff = Entity.objects.get(identifier="m2").updated_at
    body = {"datasource_prefix": "port-ocean/fake/", "datasource_suffix": "/my-fake/exporter", "limit": 2,
            "before": cutoff.isoformat()}

    first = admin_api.post("/v1/blueprints/entities/datasource-entities", body, format="json", **as_ocean())
    second = admin_api.post("/v1/blueprints/entities/datasource-entities", {**body, "from": first.json()["next"]},
                            format="json", **as_ocean())

    assert first.status_code == 200, first.json()
    assert first.json()["entities"] == [{"identifier": "t1", "blueprint": "team", "relations": {}},
                                        {"identifier": "m0", "blueprint": "service",
                                         "relations": {"team": "t1", "uses": []}}]
    assert [e["identifier"] for e in second.json()["entities"]] == ["m1"] and second.json()["next"] is None
    everything = admin_api.post("/v1/blueprints/entities/datasource-entities",
                                {"datasource_prefix": "port-ocean/fake/", "datasource_suffix": "/my-fake/exporter"},
                                format="json").json()
    assert [e["identifier"] for e in everything["entities"]] == ["t1", "m0", "m1", "m2"]


def test_datasource_entities_refuses_a_bad_body_naming_the_field(admin_api, datasource_catalog):
    for body, message in [({"datasource_suffix": "x"}, "datasource_prefix: is required, a non-empty string"),
                          ({"datasource_prefix": "p", "datasource_suffix": "s", "before": "yesterday"}, "before: "),
                          ({"datasource_prefix": "p", "datasource_suffix": "s", "limit": 0}, "limit: ")]:
        response = admin_api.post("/v1/blueprints/entities/datasource-entities", body, format="json")
        assert response.status_code == 422 and response.json()["message"].startswith(message), response.json()


def test_an_integrations_bulk_delete_removes_only_its_own_entities(admin_api, datasource_catalog):
    for identifier, agent in (("mine", MINE), ("theirs", OTHER), ("persons", "curl/8.0")):
        admin_api.post("/v1/blueprints/service/entities", {"identifier": identifier}, format="json",
                       HTTP_USER_AGENT=agent)

    response = admin_api.post("/v1/blueprints/service/bulk/entities/delete?delete_dependents=true",
                              {"entities": ["mine", "theirs", "persons"]}, format="json", **as_ocean())

    assert response.status_code == 200 and response.json()["deletedEntities"] == ["mine"]
    assert sorted(Entity.objects.values_list("identifier", flat=True)) == ["persons", "theirs"]
    assert list(AuditEvent.objects.filter(verb="catalog.entity.deleted").values_list("identifier", flat=True)) == ["mine"]


def test_an_upsert_that_changes_nothing_is_not_written(admin_api, datasource_catalog):
    """Ocean upserts everything it sees each resync and then lists its entities last written before the resync
    began: one it saw again unchanged keeps its updatedAt (and writes no audit event), or it would drop out of
    that list and the share Ocean is about to delete would look larger than it is."""
    body = {"identifier": "a", "title": "A", "properties": {"size": 1}}
    admin_api.post("/v1/blueprints/service/entities?upsert=true&merge=true", body, format="json", **as_ocean())
    written = Entity.objects.get(identifier="a").updated_at
    events = AuditEvent.objects.count()

    again = admin_api.post("/v1/blueprints/service/entities/bulk?upsert=true&merge=true", {"entities": [body]},
                           format="json", **as_ocean())

    assert again.status_code == 200, again.json()
    assert Entity.objects.get(identifier="a").updated_at == written and AuditEvent.objects.count() == events
    changed = admin_api.post("/v1/blueprints/service/entities?upsert=true&merge=true",
                             {**body, "properties": {"size": 2}}, format="json", **as_ocean())
    assert changed.status_code == 200 and Entity.objects.get(identifier="a").updated_at > written
    assert AuditEvent.objects.count() == events + 1
    by_other = admin_api.post("/v1/blueprints/service/entities?upsert=true&merge=true",
                              {**body, "properties": {"size": 2}}, format="json", **as_ocean(OTHER))
    assert by_other.status_code == 200 and datasource("a") == OTHER  # a new owner is a change


def test_the_datasource_entities_query_count_does_not_grow(admin_api, datasource_catalog):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    body = {"datasource_prefix": "port-ocean/fake/", "datasource_suffix": "/my-fake/exporter"}

    def count():
        with CaptureQueriesContext(connection) as captured:
            response = admin_api.post("/v1/blueprints/entities/datasource-entities", body, format="json")
        assert response.status_code == 200
        return len(captured), len(response.json()["entities"])

    EntityFactory(blueprint=datasource_catalog, actor=Actor(origin="API", datasource=MINE), identifier="s0")
    one = count()
    for i in range(1, 6):
        EntityFactory(blueprint=datasource_catalog, actor=Actor(origin="API", datasource=MINE), identifier=f"s{i}",
                      relations={"uses": ["s0"]})

    assert count() == (one[0], 6)
