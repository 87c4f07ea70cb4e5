"""Aggregation values kept current by the writers (catalog/services/aggregations.py): incrementally on entity writes,
moves and deletes (only the entities a change can reach), fully on definition changes; searchable, shown in entity
JSON, and read by scorecards."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Blueprint, Entity
from catalog.selectors.search import search_queryset
from catalog.services.blueprints import blueprint_create, blueprint_update
from catalog.services.entities import UPSERT, entities_delete, entity_write_one
from catalog.services.scorecards import scorecard_create
from portal.actor import Actor
from tests.factories import UserFactory
from tests.support.api import api_for

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()
COUNT = {"calculationBy": "entities", "func": "count"}


def write(blueprint, identifier, properties=None, **relations):
    entity_write_one(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier=blueprint), mode=UPSERT,
                     data={"identifier": identifier, "properties": properties or {}, "relations": relations})


def aggregates(identifier):
    return Entity.objects.get(identifier=identifier).aggregates


@pytest.fixture
def deployment_chain(db):
    blueprint_create(actor=SYSTEM, data={"identifier": "system", "title": "System", "schema": {"properties": {}}})
    blueprint_create(actor=SYSTEM, data={"identifier": "package", "title": "Package", "schema": {"properties": {}}})
    blueprint_create(actor=SYSTEM, data={
        "identifier": "service", "title": "Service", "schema": {"properties": {}},
        "relations": {"system": {"target": "system", "many": False, "required": False},
                      "uses": {"target": "package", "many": True, "required": False}}})
    blueprint_create(actor=SYSTEM, data={
        "identifier": "deployment", "title": "Deployment", "schema": {"properties": {"status": {"type": "string"}}},
        "relations": {"service": {"target": "service", "many": False, "required": False}}})
    blueprint_update(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="service"), partial=True, data={
        "aggregationProperties": {
            "deployments": {"title": "Deployments", "type": "number", "target": "deployment", "calculationSpec": COUNT},
            "failures": {"title": "Failures", "type": "number", "target": "deployment", "calculationSpec": COUNT,
                         "query": {"combinator": "and", "rules": [{"property": "status", "operator": "=", "value": "failure"}]}},
            "packages": {"title": "Packages", "type": "number", "target": "package", "calculationSpec": COUNT}}})
    blueprint_update(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="system"), partial=True, data={
        "aggregationProperties": {"deployments": {"title": "Deployments", "type": "number", "target": "deployment",
                                                  "calculationSpec": COUNT}}})
    write("system", "shop")
    write("package", "react")
    write("package", "lodash")
    write("service", "checkout", system="shop", uses=["react", "lodash"])
    write("service", "billing", system="shop")
    write("service", "idle")


def test_who_aggregates_over_what_is_kept_on_the_blueprints(deployment_chain):
    by = {bp.identifier: bp.aggregated_by for bp in Blueprint.objects.all()}
    assert by["deployment"] == [["service", "deployments"], ["service", "failures"], ["system", "deployments"]]
    assert by["package"] == [["service", "packages"]]
    assert ["system", "deployments"] in by["service"] and ["service", "packages"] in by["service"]


def test_writes_moves_and_deletes_keep_the_values(deployment_chain):
    assert aggregates("checkout") == {"deployments": 0, "failures": 0, "packages": 2}
    write("deployment", "d1", {"status": "success"}, service="checkout")
    write("deployment", "d2", {"status": "failure"}, service="checkout")
    assert aggregates("checkout") == {"deployments": 2, "failures": 1, "packages": 2}
    assert aggregates("shop") == {"deployments": 2}  # two hops back: deployment -> service -> system
    write("deployment", "d2", {"status": "failure"}, service="billing")  # moved: both ends follow
    assert aggregates("checkout")["failures"] == 0 and aggregates("billing")["failures"] == 1
    write("deployment", "d1", {"status": "failure"}, service="checkout")  # a property the query reads
    assert aggregates("checkout")["failures"] == 1
    write("service", "billing")  # billing leaves the shop system: its deployment no longer counts there
    assert aggregates("shop") == {"deployments": 1}
    entities_delete(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="deployment"), identifiers=["d1"])
    assert aggregates("checkout")["deployments"] == 0 and aggregates("shop") == {"deployments": 0}
    # a target deleted: the relation to it goes with it, found before it went
    entities_delete(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="package"), identifiers=["react"])
    assert aggregates("checkout")["packages"] == 1


def test_a_write_reaches_only_the_entities_related_to_it(deployment_chain):
    """The statements of a deployment write do not grow with the catalog, and no unrelated entity is rewritten."""
    def statements_of_a_write(identifier):
        with CaptureQueriesContext(connection) as captured:
            write("deployment", identifier, {"status": "success"}, service="checkout")
        return len(captured)

    small = statements_of_a_write("d-small")
    for i in range(30):
        write("service", f"other{i}", system="shop")
    untouched = dict(Entity.objects.filter(identifier__startswith="other").values_list("identifier", "aggregates"))
    assert statements_of_a_write("d-large") == small
    assert dict(Entity.objects.filter(identifier__startswith="other").values_list("identifier", "aggregates")) == untouched


def test_nothing_is_asked_of_a_blueprint_nothing_aggregates_over(deployment_chain):
    blueprint_create(actor=SYSTEM, data={"identifier": "note", "title": "Note", "schema": {"properties": {}}})
    with CaptureQueriesContext(connection) as captured:
        write("note", "n1")
    assert not [q for q in captured if "WITH RECURSIVE" in q["sql"] or 'SET "aggregates"' in q["sql"]]


def test_a_new_aggregation_is_computed_over_every_entity(deployment_chain):
    write("deployment", "d1", {"status": "success"}, service="checkout")
    blueprint = Blueprint.objects.get(identifier="system")
    blueprint_update(actor=SYSTEM, blueprint=blueprint, partial=True, data={"aggregationProperties": {
        **blueprint.aggregation_properties,
        "services": {"title": "Services", "type": "number", "target": "service", "calculationSpec": COUNT}}})
    assert aggregates("shop") == {"deployments": 1, "services": 2}


def test_searchable_like_a_number_and_shown_in_entity_json(deployment_chain):
    write("deployment", "d1", {"status": "failure"}, service="checkout")
    found = search_queryset({"combinator": "and", "rules": [{"property": "deployments", "operator": ">", "value": 0}]},
                            user=None, blueprint="service")
    assert [e.identifier for e in found] == ["checkout"]
    found = search_queryset({"combinator": "and", "rules": [{"property": "failures", "operator": "=", "value": 0}]},
                            user=None, blueprint="service")
    assert sorted(e.identifier for e in found) == ["billing", "idle"]
    api = api_for(UserFactory(admin=True))
    properties = api.get("/v1/blueprints/service/entities/checkout").json()["entity"]["properties"]
    assert {k: properties[k] for k in ("deployments", "failures", "packages")} == {"deployments": 1, "failures": 1,
                                                                                   "packages": 2}


def test_a_scorecard_rule_on_an_aggregation_moves_with_the_related_writes(deployment_chain):
    scorecard_create(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="service"), data={
        "identifier": "shipping", "rules": [{"identifier": "deployed", "level": "Bronze", "query": {
            "combinator": "and", "conditions": [{"property": "deployments", "operator": ">", "value": 0}]}},
            {"identifier": "healthy", "level": "Silver", "query": {
                "combinator": "and", "conditions": [{"property": "failures", "operator": "=", "value": 0}]}}]})

    def level(identifier):
        return Entity.objects.get(identifier=identifier).scorecard_results.get().level

    assert level("checkout") == "Basic"
    write("deployment", "d1", {"status": "success"}, service="checkout")
    assert level("checkout") == "Gold"
    write("deployment", "d2", {"status": "failure"}, service="checkout")
    assert level("checkout") == "Bronze"
    assert level("billing") == "Basic"
