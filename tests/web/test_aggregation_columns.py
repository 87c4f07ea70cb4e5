"""Aggregation properties in the catalog table: a column of its own kind, sortable both ways with keyset pages
(entities without a value last), like a number property."""
import re
from html import unescape

import pytest

from catalog.models import Blueprint
from catalog.services.blueprints import blueprint_update
from portal.actor import Actor
from tests.factories import BlueprintFactory, EntityFactory, UserFactory

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()


@pytest.fixture
def counted_services(client):
    BlueprintFactory(identifier="service", title="Service", schema={"properties": {"tier": {"type": "string"}}})
    BlueprintFactory(identifier="deployment", title="Deployment", schema={"properties": {}},
                     relations={"service": {"target": "service", "many": False, "required": False}})
    blueprint_update(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="service"), partial=True, data={
        "aggregationProperties": {"deployments": {"title": "Deployments", "type": "number", "target": "deployment",
                                                  "calculationSpec": {"calculationBy": "entities", "func": "count"}}}})
    service, deployment = (Blueprint.objects.get(identifier=i) for i in ("service", "deployment"))
    for identifier, count in (("alpha", 2), ("beta", 0), ("gamma", 3)):
        EntityFactory(blueprint=service, identifier=identifier, title=identifier.title())
        for i in range(count):
            EntityFactory(blueprint=deployment, identifier=f"{identifier}-{i}", relations={"service": identifier})
    client.force_login(UserFactory(admin=True))
    return client


def titles(response):
    text = unescape(response.content.decode())
    return re.findall(r'<td><a href="/catalog/service/\w+/">(\w+)</a>', text)


def test_sorted_by_an_aggregation_both_ways_and_paged(counted_services):
    response = counted_services.get("/catalog/service/?sort=-deployments&columns=deployments")
    assert response.status_code == 200
    assert titles(response) == ["Gamma", "Alpha", "Beta"]
    assert titles(counted_services.get("/catalog/service/?sort=deployments&columns=deployments")) == ["Beta", "Alpha",
                                                                                                      "Gamma"]
    first = counted_services.get("/catalog/service/?sort=-deployments&limit=2")
    assert titles(first) == ["Gamma", "Alpha"]
    after = re.search(r'href="\?([^"]*after=[^"]+)"', unescape(first.content.decode())).group(1)
    assert titles(counted_services.get(f"/catalog/service/?{after}")) == ["Beta"]


def test_the_column_says_what_it_counts(counted_services):
    text = unescape(counted_services.get("/catalog/service/?columns=deployments").content.decode())
    assert 'title="aggregation: count over related deployment"' in text
