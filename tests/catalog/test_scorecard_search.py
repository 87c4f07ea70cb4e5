"""Search by a scorecard level: `{"property": "$scorecard.<id>", "operator": ..., "value": <level>}` — levels compare
in the scorecard's order, negations include the entities its filter leaves out, bad levels and scorecards are 422s
naming the field, and the reader's permissions still apply."""
import pytest

from catalog.models import Blueprint
from catalog.selectors.search import search_queryset
from catalog.services.permissions import blueprint_permissions_update
from catalog.services.scorecards import scorecard_create
from portal.actor import Actor
from portal.errors import ValidationFailed
from tests.factories import BlueprintFactory, EntityFactory, TeamFactory, UserFactory
from tests.support.api import api_for

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()


def rule(identifier, level, prop):
    return {"identifier": identifier, "level": level,
            "query": {"combinator": "and", "conditions": [{"property": prop, "operator": "isNotEmpty"}]}}


@pytest.fixture
def leveled_services(db):
    TeamFactory(name="payments")
    TeamFactory(name="platform")
    BlueprintFactory(identifier="service", title="Service", schema={"properties": {
        "readme": {"type": "string"}, "onCall": {"type": "string"}, "slo": {"type": "string"}, "tier": {"type": "string"}}})
    blueprint = Blueprint.objects.get(identifier="service")
    scorecard_create(actor=SYSTEM, blueprint=blueprint, data={
        "identifier": "readiness", "filter": {"combinator": "and", "conditions": [
            {"property": "tier", "operator": "=", "value": "prod"}]},
        "rules": [rule("readme", "Bronze", "readme"), rule("onCall", "Silver", "onCall"), rule("slo", "Gold", "slo")]})
    for identifier, team, properties in (
            ("basic", "payments", {"tier": "prod"}),
            ("bronze", "payments", {"tier": "prod", "readme": "r"}),
            ("silver", "platform", {"tier": "prod", "readme": "r", "onCall": "o"}),
            ("gold", "platform", {"tier": "prod", "readme": "r", "onCall": "o", "slo": "s"}),
            ("unrated", "platform", {"tier": "dev"})):
        EntityFactory(blueprint=blueprint, identifier=identifier, team=[team], properties=properties)
    return blueprint


def found(operator, value=None):
    rule = {"property": "$scorecard.readiness", "operator": operator}
    if value is not None:
        rule["value"] = value
    return sorted(e.identifier for e in search_queryset({"combinator": "and", "rules": [rule]}, user=None,
                                                       blueprint="service"))


@pytest.mark.parametrize("operator, value, expected", [
    ("=", "Silver", ["silver"]),
    ("in", ["Basic", "Gold"], ["basic", "gold"]),
    (">=", "Silver", ["gold", "silver"]),
    (">", "Silver", ["gold"]),
    ("<", "Silver", ["basic", "bronze"]),
    ("<=", "Basic", ["basic"]),
    ("!=", "Silver", ["basic", "bronze", "gold", "unrated"]),  # the unrated one has no level: not equal
    ("notIn", ["Basic", "Bronze"], ["gold", "silver", "unrated"]),
    ("isNotEmpty", None, ["basic", "bronze", "gold", "silver"]),
    ("isEmpty", None, ["unrated"]),
])
def test_levels_compare_in_the_scorecards_order(leveled_services, operator, value, expected):
    assert found(operator, value) == expected


@pytest.mark.parametrize("rule, path, text", [
    ({"property": "$scorecard.readiness", "operator": "=", "value": "Platinum"}, "rules[0].value", "'Platinum' is not a level"),
    ({"property": "$scorecard.readiness", "operator": "in", "value": ["Gold", 3]}, "rules[0].value", ""),
    ({"property": "$scorecard.nothing", "operator": "=", "value": "Gold"}, "rules[0].property", "no blueprint in scope"),
    ({"property": "$scorecard.readiness", "operator": "contains", "value": "Go"}, "rules[0].operator", "does not apply"),
])
def test_bad_rules_are_422s_naming_the_field(leveled_services, rule, path, text):
    with pytest.raises(ValidationFailed) as refused:
        search_queryset({"combinator": "and", "rules": [rule]}, user=None, blueprint="service")
    message = str(refused.value)
    assert message.startswith(f"{path}") and text in message


def test_through_the_api_with_the_readers_permissions(leveled_services):
    blueprint_permissions_update(actor=SYSTEM, blueprint=leveled_services,
                                 data={"entities": {"read": {"roles": [], "ownedByTeam": True}}})
    member = api_for(UserFactory(email="pay@example.com", teams=["payments"]))  # the team exists already
    response = member.post("/v1/blueprints/service/entities/search", {"query": {"combinator": "and", "rules": [
        {"property": "$scorecard.readiness", "operator": "<", "value": "Gold"}]}}, format="json")
    assert response.status_code == 200, response.json()
    assert sorted(e["identifier"] for e in response.json()["entities"]) == ["basic", "bronze"]  # not platform's silver


def test_a_scorecard_cannot_read_levels(leveled_services):
    admin = api_for(UserFactory(admin=True))
    response = admin.post("/v1/blueprints/service/scorecards", {"identifier": "meta", "rules": [
        {"identifier": "r", "level": "Gold", "query": {"combinator": "and", "conditions": [
            {"combinator": "or", "rules": [{"property": "$scorecard.readiness", "operator": "=", "value": "Gold"}]}]}}]},
        format="json")
    assert response.status_code == 422
    assert response.json()["message"].startswith("rules[0].query.conditions[0].rules[0].property: ")
