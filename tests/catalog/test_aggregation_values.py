"""Aggregation properties computed (catalog/selectors/aggregations.py): every function, the time windows, the
query filter, both directions of the relation walk, path filters, cycles, and entities with nothing to aggregate."""
from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import Blueprint, Entity
from catalog.selectors.aggregations import aggregation_values
from catalog.services.blueprints import blueprint_create, blueprint_update
from catalog.services.entities import UPSERT, entity_write_one
from portal.actor import Actor

SYSTEM = Actor.system()
NOW = timezone.now().replace(microsecond=0)


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def write(blueprint, identifier, properties=None, relations=None):
    entity_write_one(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier=blueprint), mode=UPSERT,
                     data={"identifier": identifier, "properties": properties or {}, "relations": relations or {}})


def values_of(blueprint, key=None):
    bp = Blueprint.objects.get(identifier=blueprint)
    ids = dict(Entity.objects.filter(blueprint=bp).values_list("id", "identifier"))
    computed = aggregation_values(bp, ids)
    return {ids[pk]: (values[key] if key else values) for pk, values in computed.items()}


def aggregate(blueprint, key, **definition):
    bp = Blueprint.objects.get(identifier=blueprint)
    blueprint_update(actor=SYSTEM, blueprint=bp, partial=True, data={
        "aggregationProperties": {**bp.aggregation_properties, key: {"title": key, "type": "number", **definition}}})


@pytest.fixture
def aggregation_catalog(db):
    """Systems hold services; services depend on packages; deployments point at services."""
    blueprint_create(actor=SYSTEM, data={"identifier": "system", "title": "System", "schema": {"properties": {}}})
    blueprint_create(actor=SYSTEM, data={"identifier": "package", "title": "Package",
                                         "schema": {"properties": {"size": {"type": "number"}}}})
    blueprint_create(actor=SYSTEM, data={
        "identifier": "service", "title": "Service", "schema": {"properties": {}},
        "relations": {"system": {"target": "system", "many": False, "required": False},
                      "uses": {"target": "package", "many": True, "required": False},
                      "buildsWith": {"target": "package", "many": True, "required": False}}})
    blueprint_create(actor=SYSTEM, data={
        "identifier": "deployment", "title": "Deployment",
        "schema": {"properties": {"status": {"type": "string"}, "leadTime": {"type": "number"},
                                  "deployedAt": {"type": "string", "format": "date-time"}}},
        "relations": {"service": {"target": "service", "many": False, "required": False}}})
    write("system", "shop")
    write("system", "empty")
    for name, size in (("left-pad", 1), ("react", 40), ("lodash", 9), ("unused", 100)):
        write("package", name, {"size": size})
    write("service", "checkout", relations={"system": "shop", "uses": ["left-pad", "react", "lodash"]})
    write("service", "billing", relations={"system": "shop", "uses": ["left-pad"]})
    write("service", "idle")
    deployments = [("checkout", "success", 10, 1), ("checkout", "success", 30, 3), ("checkout", "failure", 5, 10),
                   ("checkout", "success", 20, 40), ("billing", "failure", 7, 2)]
    for i, (service, status, lead, days_ago) in enumerate(deployments):
        write("deployment", f"d{i}", {"status": status, "leadTime": lead,
                                      "deployedAt": iso(NOW - timedelta(days=days_ago))}, {"service": service})


@pytest.mark.parametrize("func, expected", [
    ("sum", {"checkout": 65, "billing": 7, "idle": 0}),
    ("min", {"checkout": 5, "billing": 7, "idle": None}),
    ("max", {"checkout": 30, "billing": 7, "idle": None}),
    ("average", {"checkout": 16.25, "billing": 7, "idle": None}),
    ("median", {"checkout": 15, "billing": 7, "idle": None}),
])
def test_each_function_by_property_over_the_entities_pointing_back(aggregation_catalog, func, expected):
    aggregate("service", "lead", target="deployment",
              calculationSpec={"calculationBy": "property", "func": func, "property": "leadTime"})
    assert values_of("service", "lead") == expected


def test_count_follows_relations_forwards(aggregation_catalog):
    aggregate("service", "packages", target="package", calculationSpec={"calculationBy": "entities", "func": "count"})
    assert values_of("service", "packages") == {"checkout": 3, "billing": 1, "idle": 0}


def test_count_follows_relations_backwards_at_any_depth(aggregation_catalog):
    """system <- service <- deployment: two hops against the relations' direction."""
    aggregate("system", "deployments", target="deployment", calculationSpec={"calculationBy": "entities", "func": "count"})
    assert values_of("system", "deployments") == {"shop": 5, "empty": 0}


def test_an_entity_reached_by_two_paths_counts_once(aggregation_catalog):
    """checkout uses left-pad and also builds with it: two edges to one package."""
    write("service", "checkout", relations={"system": "shop", "uses": ["left-pad", "react", "lodash"],
                                            "buildsWith": ["left-pad"]})
    aggregate("service", "packages", target="package", calculationSpec={"calculationBy": "entities", "func": "count"})
    assert values_of("service", "packages") == {"checkout": 3, "billing": 1, "idle": 0}


def test_the_query_filters_the_target_entities(aggregation_catalog):
    aggregate("service", "failures", target="deployment", calculationSpec={"calculationBy": "entities", "func": "count"},
              query={"combinator": "and", "rules": [{"property": "status", "operator": "=", "value": "failure"}]})
    assert values_of("service", "failures") == {"checkout": 1, "billing": 1, "idle": 0}


def test_a_time_window_is_a_between_rule_with_a_preset(aggregation_catalog):
    aggregate("service", "recent", target="deployment", calculationSpec={"calculationBy": "entities", "func": "count"},
              query={"combinator": "and", "rules": [
                  {"property": "deployedAt", "operator": "between", "value": {"preset": "lastWeek"}}]})
    assert values_of("service", "recent") == {"checkout": 2, "billing": 1, "idle": 0}


def test_average_of_entities_per_period_from_the_earliest_to_now(aggregation_catalog):
    """checkout's deployments span 40 days: 4 over 6 weeks (ceil of 40/7) is 2/3 per week; billing's one, 2 days
    ago, is 1 in its one week; a service without deployments averages 0."""
    aggregate("service", "perWeek", target="deployment", calculationSpec={
        "calculationBy": "entities", "func": "average", "averageOf": "week", "measureTimeBy": "deployedAt"})
    result = values_of("service", "perWeek")
    assert result["checkout"] == pytest.approx(4 / 6)
    assert result["billing"] == 1
    assert result["idle"] == 0


def test_average_by_property_per_period_is_the_sum_per_period(aggregation_catalog):
    """A started period counts whole: checkout's earliest deployment is 40 days and some seconds ago, 41 days."""
    aggregate("service", "leadPerDay", target="deployment", calculationSpec={
        "calculationBy": "property", "func": "average", "property": "leadTime", "averageOf": "day",
        "measureTimeBy": "deployedAt"})
    assert values_of("service", "leadPerDay") == {"checkout": pytest.approx(65 / 41), "billing": pytest.approx(7 / 3),
                                                  "idle": 0}


def test_entities_without_a_number_are_left_out(aggregation_catalog):
    write("deployment", "no-lead", {"status": "success"}, {"service": "idle"})
    aggregate("service", "lead", target="deployment",
              calculationSpec={"calculationBy": "property", "func": "average", "property": "leadTime"})
    aggregate("service", "count", target="deployment", calculationSpec={"calculationBy": "entities", "func": "count"})
    assert values_of("service")["idle"] == {"lead": None, "count": 1}


def test_a_path_filter_follows_exactly_the_named_relations(aggregation_catalog):
    """From the deployment's side: deployment -service-> service -system-> system, walked backwards from a system."""
    aggregate("system", "viaService", target="deployment", calculationSpec={"calculationBy": "entities", "func": "count"},
              pathFilter=[{"fromBlueprint": "deployment", "path": ["service", "system"]}])
    assert values_of("system", "viaService") == {"shop": 5, "empty": 0}


def test_a_forward_path_filter(aggregation_catalog):
    aggregate("service", "size", target="package", calculationSpec={"calculationBy": "property", "func": "sum",
                                                                    "property": "size"},
              pathFilter=[{"path": ["uses"]}])
    assert values_of("service", "size") == {"checkout": 50, "billing": 1, "idle": 0}


def test_a_cycle_ends_and_counts_each_entity_once(db):
    blueprint_create(actor=SYSTEM, data={"identifier": "node", "title": "Node", "schema": {"properties": {}},
                                         "relations": {"next": {"target": "node", "many": True, "required": False}}})
    write("node", "a")
    write("node", "b")
    write("node", "c")
    write("node", "a", relations={"next": ["b"]})
    write("node", "b", relations={"next": ["c"]})
    write("node", "c", relations={"next": ["a"]})
    aggregate("node", "reach", target="node", calculationSpec={"calculationBy": "entities", "func": "count"})
    # forwards a reaches b, c and (through c) a itself; backwards the same three: the union is 3
    assert values_of("node", "reach") == {"a": 3, "b": 3, "c": 3}


def test_only_the_asked_entities_and_keys_are_computed(aggregation_catalog, django_assert_num_queries):
    aggregate("service", "packages", target="package", calculationSpec={"calculationBy": "entities", "func": "count"})
    aggregate("service", "lead", target="deployment",
              calculationSpec={"calculationBy": "property", "func": "sum", "property": "leadTime"})
    service = Blueprint.objects.get(identifier="service")
    checkout = Entity.objects.get(identifier="checkout")
    # the blueprint graph, then one statement per aggregation (a query filter adds only its target's definition)
    with django_assert_num_queries(2):
        assert aggregation_values(service, [checkout.pk], keys={"lead"}) == {checkout.pk: {"lead": 65}}


def test_huge_sums_stay_exact(aggregation_catalog):
    write("deployment", "big1", {"leadTime": 1e308}, {"service": "idle"})
    write("deployment", "big2", {"leadTime": 1e308}, {"service": "idle"})
    write("deployment", "whole", {"leadTime": 2 ** 60}, {"service": "billing"})
    aggregate("service", "lead", target="deployment",
              calculationSpec={"calculationBy": "property", "func": "sum", "property": "leadTime"})
    result = values_of("service", "lead")
    assert result["billing"] == 2 ** 60 + 7
    assert result["idle"] == 2 * 10 ** 308  # numeric sums are exact, beyond a float's range too
