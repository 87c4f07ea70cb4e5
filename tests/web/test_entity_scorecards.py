"""The entity page's scorecard section and aggregation values: each scorecard the entity stands on with its level,
every rule passed or failed, and what to fix for the next level; none for an entity a filter leaves out or a
blueprint without scorecards; an aggregation property shown among the properties, marked as computed."""
from html import unescape

import pytest

from catalog.models import Blueprint
from catalog.services.blueprints import blueprint_update
from catalog.services.scorecards import scorecard_create
from portal.actor import Actor
from tests.factories import BlueprintFactory, EntityFactory, UserFactory

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()


def rule(identifier, title, level, prop):
    return {"identifier": identifier, "title": title, "level": level,
            "query": {"combinator": "and", "conditions": [{"property": prop, "operator": "isNotEmpty"}]}}


@pytest.fixture
def scored_page(client):
    BlueprintFactory(identifier="service", title="Service", schema={"properties": {
        "readme": {"type": "string", "title": "README"}, "onCall": {"type": "string", "title": "On-call"},
        "tier": {"type": "string"}}})
    BlueprintFactory(identifier="deployment", title="Deployment", schema={"properties": {}},
                     relations={"service": {"target": "service", "many": False, "required": False}})
    blueprint_update(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="service"), partial=True, data={
        "aggregationProperties": {"deployments": {"title": "Deployments", "type": "number", "target": "deployment",
                                                  "calculationSpec": {"calculationBy": "entities", "func": "count"}}}})
    scorecard_create(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="service"), data={
        "identifier": "readiness", "title": "Production readiness",
        "filter": {"combinator": "and", "conditions": [{"property": "tier", "operator": "=", "value": "prod"}]},
        "rules": [rule("hasReadme", "Has a README", "Bronze", "readme"),
                  rule("hasOnCall", "Has on-call", "Silver", "onCall")]})
    EntityFactory(blueprint=Blueprint.objects.get(identifier="service"), identifier="checkout",
                  properties={"tier": "prod", "readme": "https://docs/checkout"})
    EntityFactory(blueprint=Blueprint.objects.get(identifier="service"), identifier="sandbox",
                  properties={"tier": "dev"})
    for i in range(2):
        EntityFactory(blueprint=Blueprint.objects.get(identifier="deployment"), identifier=f"d{i}",
                      relations={"service": "checkout"})
    client.force_login(UserFactory(admin=True))
    return client


def text_of(response):
    return unescape(response.content.decode())


def test_the_section_shows_the_level_each_rule_and_what_to_fix(scored_page):
    page = text_of(scored_page.get("/catalog/service/checkout/"))
    section = page[page.index('id="scorecards-heading"'):page.index('id="relations-heading"')]
    assert "Production readiness" in section and ">Bronze</span>" in section
    assert "1 of 2 rules passed" in section
    assert "To reach <strong>Silver</strong>, fix:" in section
    assert "Has on-call <code>onCall isNotEmpty</code>" in section
    assert '<tr class="passed"><td>Has a README</td><td>Bronze</td>' in section
    assert '<tr class="failed"><td>Has on-call</td><td>Silver</td>' in section


def test_an_aggregation_is_shown_among_the_properties(scored_page):
    page = text_of(scored_page.get("/catalog/service/checkout/"))
    properties = page[page.index('id="properties-heading"'):page.index('id="scorecards-heading"')]
    assert "Deployments" in properties and "aggregation" in properties
    assert "count over related deployment" in properties
    assert ">2<" in properties.replace(" ", "")


def test_no_section_where_no_scorecard_applies(scored_page):
    assert 'id="scorecards-heading"' not in text_of(scored_page.get("/catalog/service/sandbox/"))
    assert 'id="scorecards-heading"' not in text_of(scored_page.get("/catalog/deployment/d0/"))
