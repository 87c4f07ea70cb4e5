"""The SQL of a blueprint's scorecard rules is compiled once per process for the same definition and scorecards,
and compiled afresh when either changes or when the rules read the clock (date presets) — so an entity write
pays for evaluating the rules, not for compiling them, and never evaluates stale rules."""
import pytest

from catalog.models import Blueprint, Entity
from catalog.selectors import scorecard_rules
from catalog.services.blueprints import blueprint_update
from catalog.services.scorecards import scorecard_create, scorecard_update
from portal.actor import Actor
from tests.factories import BlueprintFactory, EntityFactory

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()


def not_empty_rule(identifier, level, prop):
    return {"identifier": identifier, "level": level,
            "query": {"combinator": "and", "conditions": [{"property": prop, "operator": "isNotEmpty"}]}}


@pytest.fixture
def compiled_service(db):
    scorecard_rules._compiled.clear()
    BlueprintFactory(identifier="service", title="Service", schema={"properties": {
        "readme": {"type": "string"}, "shippedAt": {"type": "string", "format": "date-time"}}})
    blueprint = Blueprint.objects.get(identifier="service")
    scorecard_create(actor=SYSTEM, blueprint=blueprint, data={"identifier": "readiness", "rules": [
        not_empty_rule("hasReadme", "Silver", "readme")]})
    return Blueprint.objects.get(identifier="service")


def level_of(identifier):
    return Entity.objects.get(identifier=identifier).scorecard_results.get().level


def test_the_same_rules_compile_once_and_a_changed_definition_compiles_again(compiled_service):
    first = scorecard_rules.scorecard_conditions(compiled_service, compiled_service.scorecards)
    assert scorecard_rules.scorecard_conditions(compiled_service, compiled_service.scorecards) is first
    changed = blueprint_update(actor=SYSTEM, blueprint=compiled_service, data={
        "title": "Service", "schema": {"properties": {"readme": {"type": "string"}, "owner": {"type": "string"},
                                                      "shippedAt": {"type": "string", "format": "date-time"}}}})
    assert scorecard_rules.scorecard_conditions(changed, changed.scorecards) is not first


def test_writes_after_a_scorecard_edit_use_the_edited_rules(compiled_service):
    EntityFactory(blueprint="service", identifier="checkout", properties={"readme": "r"})
    assert level_of("checkout") == "Gold"  # Silver's rule passed, no Gold rules
    scorecard_update(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="service"), identifier="readiness", data={"rules": [
        not_empty_rule("hasReadme", "Silver", "readme"), not_empty_rule("shipped", "Gold", "shippedAt")]})
    EntityFactory(blueprint="service", identifier="checkout", properties={"readme": "r2"})
    assert level_of("checkout") == "Silver"


def test_rules_that_read_the_clock_are_not_kept(compiled_service):
    recent = {"identifier": "recent", "level": "Gold", "query": {"combinator": "and", "conditions": [
        {"property": "shippedAt", "operator": "between", "value": {"preset": "lastWeek"}}]}}
    scorecards = [{**compiled_service.scorecards[0], "rules": [*compiled_service.scorecards[0]["rules"], recent]}]
    first = scorecard_rules.scorecard_conditions(compiled_service, scorecards)
    assert scorecard_rules.scorecard_conditions(compiled_service, scorecards) is not first
