"""Scorecards: definitions checked at the field, levels from rules, standings kept with every write, Port's routes."""
import pytest

from audit.models import AuditEvent
from catalog.models import Blueprint, Entity, ScorecardResult
from catalog.scorecards import DEFAULT_LEVELS, scorecard_definition_clean, scorecard_level
from catalog.services import scorecards as scorecard_services
from catalog.services.blueprints import blueprint_create
from catalog.services.entities import UPSERT, entity_write_one
from portal.actor import Actor
from portal.errors import ValidationFailed
from tests.factories import UserFactory
from tests.support.api import api_for

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()

SERVICE = {
    "identifier": "service", "title": "Service",
    "schema": {"properties": {"readme": {"type": "string", "format": "url"}, "onCall": {"type": "string"},
                              "tier": {"type": "string"}, "coverage": {"type": "number"}}},
    "relations": {},
}


def rule(identifier, level, *conditions, combinator="and"):
    return {"identifier": identifier, "title": identifier, "level": level,
            "query": {"combinator": combinator, "conditions": list(conditions)}}


def not_empty(prop):
    return {"property": prop, "operator": "isNotEmpty"}


READINESS = {
    "identifier": "readiness", "title": "Production readiness",
    "rules": [rule("hasReadme", "Bronze", not_empty("readme")),
              rule("hasOnCall", "Silver", not_empty("onCall")),
              rule("covered", "Gold", {"property": "coverage", "operator": ">=", "value": 80})],
}


def service(identifier, **properties):
    entity_write_one(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="service"), mode=UPSERT,
                     data={"identifier": identifier, "properties": properties})


@pytest.fixture
def scored_catalog(db):
    blueprint_create(actor=SYSTEM, data=SERVICE)
    service("bare")
    service("documented", readme="https://docs.example.com/a")
    service("excellent", readme="https://docs.example.com/b", onCall="ops", coverage=91)


def standing(api, identifier):
    body = api.get(f"/v1/blueprints/service/entities/{identifier}").json()
    return body["entity"].get("scorecards")


# -- levels -----------------------------------------------------------------------------------------------------


def levels_of(rules, levels=None):
    return scorecard_definition_clean({"identifier": "s", "rules": rules, **({"levels": levels} if levels else {})},
                                      blueprint=Blueprint.objects.get(identifier="service"))


@pytest.mark.parametrize("passed, expected", [
    (set(), "Basic"),
    ({"hasReadme"}, "Bronze"),
    ({"hasReadme", "hasOnCall"}, "Silver"),
    ({"hasReadme", "hasOnCall", "covered"}, "Gold"),
    ({"hasOnCall", "covered"}, "Basic"),  # a failed Bronze rule holds it at Basic whatever it passes above
    ({"hasReadme", "covered"}, "Bronze"),
])
def test_a_level_needs_every_rule_at_it_and_below(scored_catalog, passed, expected):
    assert scorecard_level(levels_of(READINESS["rules"]), passed) == expected


def test_a_level_without_rules_is_passed_by_reaching_the_one_below(scored_catalog):
    scorecard = levels_of([rule("hasReadme", "Bronze", not_empty("readme")), rule("covered", "Gold", not_empty("coverage"))])
    assert scorecard_level(scorecard, {"hasReadme"}) == "Silver"
    assert scorecard_level(scorecard, {"hasReadme", "covered"}) == "Gold"
    assert scorecard_level(scorecard, {"covered"}) == "Basic"


def test_no_rules_at_all_leaves_everything_at_the_first_level_and_custom_levels_keep_their_order(scored_catalog):
    custom = [{"title": "Red", "color": "red"}, {"title": "Amber", "color": "orange"}, {"title": "Green", "color": "green"}]
    scorecard = levels_of([rule("r", "Green", not_empty("readme"))], custom)
    assert scorecard["levels"] == custom
    assert scorecard_level(scorecard, set()) == "Amber"  # no Amber rules: Red's (none) pass, so Amber is reached
    assert scorecard_level(scorecard, {"r"}) == "Green"
    assert scorecard_level(levels_of([]), set()) == "Gold"
    assert levels_of([])["levels"] == list(DEFAULT_LEVELS)


# -- definitions ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("change, path", [
    ({"identifier": "bad id"}, "identifier"),
    ({"identifier": None}, "identifier"),
    ({"title": "x\x00"}, "title"),
    ({"levels": []}, "levels"),
    ({"levels": [{"title": "A", "color": "red"}, {"title": "A", "color": "blue"}]}, "levels[1].title"),
    ({"levels": [{"title": "A", "color": "#fff"}]}, "levels[0].color"),
    ({"rules": {"a": 1}}, "rules"),
    ({"rules": [rule("r", "Platinum", not_empty("readme"))]}, "rules[0].level"),
    ({"rules": [rule("r", "Basic", not_empty("readme"))]}, "rules[0].level"),
    ({"rules": [rule("r", "Gold", not_empty("readme")), rule("r", "Gold", not_empty("tier"))]}, "rules[1].identifier"),
    ({"rules": [rule("r", "Gold", not_empty("nothing"))]}, "rules[0].query.conditions[0].property"),
    ({"rules": [rule("r", "Gold", {"property": "tier", "operator": "equals", "value": "a"})]},
     "rules[0].query.conditions[0].operator"),
    ({"rules": [rule("r", "Gold", not_empty("readme"), combinator="xor")]}, "rules[0].query.combinator"),
    ({"rules": [{**rule("r", "Gold"), "query": {"combinator": "and"}}]}, "rules[0].query.conditions"),
    ({"rules": [{**rule("r", "Gold"), "extra": 1}]}, "rules[0].extra"),
    ({"filter": {"combinator": "and", "conditions": [not_empty("ghost")]}}, "filter.conditions[0].property"),
    ({"colour": "red"}, "colour"),
])
def test_a_bad_definition_is_refused_naming_the_field(scored_catalog, change, path):
    api = api_for(UserFactory(admin=True))
    response = api.post("/v1/blueprints/service/scorecards", {**READINESS, **change}, format="json")
    assert response.status_code == 422, response.json()
    assert response.json()["message"].startswith(f"{path}: "), response.json()
    assert not Blueprint.objects.get(identifier="service").scorecards


def test_a_deep_or_huge_condition_list_is_a_422_not_a_500(scored_catalog):
    deep = not_empty("readme")
    for _ in range(25):
        deep = {"combinator": "and", "rules": [deep]}
    api = api_for(UserFactory(admin=True))
    response = api.post("/v1/blueprints/service/scorecards", {**READINESS, "rules": [rule("r", "Gold", deep)]}, format="json")
    assert response.status_code == 422  # the JSON body parser's depth limit (32) comes first
    with pytest.raises(ValidationFailed) as refused:  # the shape check's (32 levels, as the body's), as the admin meets it
        levels_of([rule("r", "Gold", deep)])
    assert refused.value.errors[0].path.startswith("rules[0].query.conditions")
    assert refused.value.errors[0].message == "is nested deeper than 32 levels"
    many = [not_empty("readme")] * 600
    response = api.post("/v1/blueprints/service/scorecards", {**READINESS, "rules": [rule("r", "Gold", *many)]}, format="json")
    assert response.status_code == 422 and response.json()["message"].startswith("rules[0].query.conditions")


# -- the API and the standings ----------------------------------------------------------------------------------


def test_created_by_api_evaluated_at_once_and_shown_on_entities(scored_catalog):
    api = api_for(UserFactory(admin=True))
    response = api.post("/v1/blueprints/service/scorecards", READINESS, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()["scorecard"]
    assert created["blueprint"] == "service" and created["levels"] == list(DEFAULT_LEVELS)
    assert api.get("/v1/blueprints/service/scorecards/readiness").json()["scorecard"] == created
    assert [s["identifier"] for s in api.get("/v1/scorecards").json()["scorecards"]] == ["readiness"]
    assert standing(api, "bare")["readiness"]["level"] == "Basic"
    assert standing(api, "documented")["readiness"] == {"level": "Bronze", "rules": [
        {"identifier": "hasReadme", "status": "SUCCESS", "level": "Bronze"},
        {"identifier": "hasOnCall", "status": "FAILURE", "level": "Silver"},
        {"identifier": "covered", "status": "FAILURE", "level": "Gold"}]}
    assert standing(api, "excellent")["readiness"]["level"] == "Gold"
    event = AuditEvent.objects.get(verb="catalog.scorecard.created")
    assert event.resource_type == "scorecard" and event.identifier == "readiness" and event.blueprint == "service"


def test_an_entity_write_moves_its_level_and_touches_no_other_standing(scored_catalog, django_assert_max_num_queries):
    api = api_for(UserFactory(admin=True))
    api.post("/v1/blueprints/service/scorecards", READINESS, format="json")
    others = dict(ScorecardResult.objects.exclude(entity__identifier="documented").values_list("entity_id", "evaluated_at"))
    service("documented", readme="https://docs.example.com/a", onCall="payments")
    assert standing(api, "documented")["readiness"]["level"] == "Silver"
    assert dict(ScorecardResult.objects.exclude(entity__identifier="documented")
                .values_list("entity_id", "evaluated_at")) == others
    service("documented")  # the readme removed: back to Basic
    assert standing(api, "documented")["readiness"]["level"] == "Basic"


def test_evaluation_costs_the_same_statements_for_one_entity_or_many(scored_catalog, django_assert_num_queries):
    """An entity write re-evaluates only the entities it wrote: the statements do not grow with the catalog or
    the batch (one for the rules, one for the stored standings, one upsert)."""
    from catalog.services.scorecards import scorecards_evaluate

    api_for(UserFactory(admin=True)).post("/v1/blueprints/service/scorecards", READINESS, format="json")
    blueprint = Blueprint.objects.get(identifier="service")
    one = [Entity.objects.get(identifier="bare").pk]
    entity_write_one(actor=SYSTEM, blueprint=blueprint, mode=UPSERT, data={"identifier": "bare", "properties": {"tier": "1"}})
    with django_assert_num_queries(2):  # nothing changed: the rules and the stored standings, no write
        (before, after), = scorecards_evaluate(blueprint, one).values()
    assert before == after and after["readiness"]["level"] == "Basic"
    ScorecardResult.objects.all().delete()
    every = list(Entity.objects.values_list("pk", flat=True))
    with django_assert_num_queries(3):
        standings = scorecards_evaluate(blueprint, every)
    assert sorted(after["readiness"]["level"] for before, after in standings.values() if not before) == [
        "Basic", "Bronze", "Gold"]


def test_written_entities_standings_are_read_by_entity_alone(scored_catalog):
    """Not by blueprint too: PostgreSQL without statistics on the results table (a table just filled, autovacuum off)
    ANDs in the blueprint's index, every row of it — 100 ms per write at 100,000 scored entities (make bench,
    --only scorecards). Rows of an entity of another blueprint are still not this blueprint's to rewrite."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from catalog.services.scorecards import scorecards_evaluate

    api = api_for(UserFactory(admin=True))
    assert api.post("/v1/blueprints/service/scorecards", READINESS, format="json").status_code == 201
    blueprint_create(actor=SYSTEM, data={**SERVICE, "identifier": "library", "title": "Library"})
    library = Blueprint.objects.get(identifier="library")
    entity_write_one(actor=SYSTEM, blueprint=library, mode=UPSERT,
                     data={"identifier": "lib", "properties": {"readme": "https://docs.example.com/lib"}})
    assert api.post("/v1/blueprints/library/scorecards", READINESS, format="json").status_code == 201
    blueprint = Blueprint.objects.get(identifier="service")
    documented, lib = (Entity.objects.get(identifier=i).pk for i in ("documented", "lib"))
    library_rows = list(ScorecardResult.objects.filter(entity_id=lib).values_list("pk", "level", "evaluated_at"))
    assert [level for _, level, _ in library_rows] == ["Bronze"]

    with CaptureQueriesContext(connection) as statements:
        standings = scorecards_evaluate(blueprint, [documented, lib])
    reads = [q["sql"] for q in statements if 'FROM "catalog_scorecardresult"' in q["sql"]]
    assert len(reads) == 1 and '"blueprint_id"' not in reads[0].split("WHERE", 1)[1]
    assert list(standings) == [documented] and standings[documented][1]["readiness"]["level"] == "Bronze"
    assert list(ScorecardResult.objects.filter(entity_id=lib).values_list("pk", "level", "evaluated_at")) == library_rows


def test_a_filter_leaves_entities_out(scored_catalog):
    api = api_for(UserFactory(admin=True))
    filtered = {**READINESS, "filter": {"combinator": "and", "conditions": [not_empty("readme")]}}
    assert api.post("/v1/blueprints/service/scorecards", filtered, format="json").status_code == 201
    assert standing(api, "bare") == {}
    assert standing(api, "documented")["readiness"]["level"] == "Bronze"
    service("documented")  # no readme any more: the scorecard no longer applies
    assert standing(api, "documented") == {}
    assert not ScorecardResult.objects.filter(entity__identifier="documented").exists()


def test_a_whole_blueprint_is_evaluated_a_bounded_chunk_at_a_time(scored_catalog, monkeypatch):
    """What re-evaluating a blueprint holds at once (rules passed, standings before and after) is bounded by
    REEVALUATE_CHUNK, whatever the blueprint's size: the bench's 12,000 entities in chunks of 10,000 took a web worker
    to 281 MB and left it at 184."""
    service("on-call", onCall="ops")
    service("covered", readme="https://docs.example.com/c", onCall="ops", coverage=80)
    evaluated = []

    def spy(blueprint, entity_ids=None):
        evaluated.append(list(entity_ids))
        return evaluate(blueprint, entity_ids)

    evaluate = scorecard_services.scorecards_evaluate
    monkeypatch.setattr(scorecard_services, "REEVALUATE_CHUNK", 2)
    monkeypatch.setattr(scorecard_services, "scorecards_evaluate", spy)
    api = api_for(UserFactory(admin=True))
    assert api.post("/v1/blueprints/service/scorecards", READINESS, format="json").status_code == 201
    ids = sorted(Entity.objects.filter(blueprint__identifier="service").values_list("pk", flat=True))
    assert evaluated == [ids[0:2], ids[2:4], ids[4:5]]
    assert {identifier: standing(api, identifier)["readiness"]["level"]
            for identifier in ("bare", "documented", "excellent", "on-call", "covered")} == {
        "bare": "Basic", "documented": "Bronze", "excellent": "Gold", "on-call": "Basic", "covered": "Gold"}


def test_update_replace_and_delete_are_audited_and_re_evaluate(scored_catalog):
    api = api_for(UserFactory(admin=True))
    api.post("/v1/blueprints/service/scorecards", READINESS, format="json")
    easier = {**READINESS, "rules": [rule("hasReadme", "Gold", not_empty("readme"))]}
    response = api.put("/v1/blueprints/service/scorecards/readiness", easier, format="json")
    assert response.status_code == 200, response.json()
    assert standing(api, "documented")["readiness"]["level"] == "Gold"
    renamed = api.put("/v1/blueprints/service/scorecards/readiness", {**easier, "identifier": "other"}, format="json")
    assert renamed.status_code == 422 and renamed.json()["message"].startswith("identifier: ")

    ownership = {"identifier": "ownership", "rules": [rule("tiered", "Bronze", not_empty("tier"))]}
    response = api.put("/v1/blueprints/service/scorecards", [easier, ownership], format="json")
    assert response.status_code == 200, response.json()
    assert set(standing(api, "bare")) == {"readiness", "ownership"}
    bad = api.put("/v1/blueprints/service/scorecards", [easier, {**ownership, "rules": [rule("x", "Nope")]}], format="json")
    assert bad.status_code == 422 and bad.json()["message"].startswith("[1].rules[0].level: ")

    assert api.delete("/v1/blueprints/service/scorecards/readiness").status_code == 200
    assert set(standing(api, "bare")) == {"ownership"}
    assert api.get("/v1/blueprints/service/scorecards/readiness").status_code == 404
    assert list(AuditEvent.objects.filter(resource_type="scorecard").order_by("id").values_list("verb", "identifier")) == [
        ("catalog.scorecard.created", "readiness"), ("catalog.scorecard.updated", "readiness"),
        ("catalog.scorecard.created", "ownership"), ("catalog.scorecard.deleted", "readiness")]


def test_only_admins_and_moderators_change_scorecards_everyone_reads_them(scored_catalog):
    member = api_for(UserFactory())
    assert member.post("/v1/blueprints/service/scorecards", READINESS, format="json").status_code == 403
    admin = api_for(UserFactory(admin=True))
    admin.post("/v1/blueprints/service/scorecards", READINESS, format="json")
    assert member.get("/v1/blueprints/service/scorecards").json()["scorecards"][0]["identifier"] == "readiness"
    assert member.put("/v1/blueprints/service/scorecards/readiness", READINESS, format="json").status_code == 403
    assert member.delete("/v1/blueprints/service/scorecards/readiness").status_code == 403
    assert admin.post("/v1/blueprints/service/scorecards", READINESS, format="json").status_code == 409
    assert admin.get("/v1/blueprints/nothing/scorecards").status_code == 404


def test_a_blueprint_change_keeping_what_scorecards_read_is_taken_and_a_scorecard_round_trips(scored_catalog):
    api = api_for(UserFactory(admin=True))
    api.post("/v1/blueprints/service/scorecards", READINESS, format="json")
    properties = {**SERVICE["schema"]["properties"], "extra": {"type": "string"}}
    response = api.patch("/v1/blueprints/service", {"schema": {"properties": properties}}, format="json")
    assert response.status_code == 200, response.json()
    returned = api.get("/v1/blueprints/service/scorecards/readiness").json()["scorecard"]
    assert returned["description"] == ""
    response = api.put("/v1/blueprints/service/scorecards/readiness", returned, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["scorecard"] == returned


def test_a_blueprint_change_that_would_break_a_scorecard_is_refused(scored_catalog):
    api = api_for(UserFactory(admin=True))
    api.post("/v1/blueprints/service/scorecards", READINESS, format="json")
    properties = {k: v for k, v in SERVICE["schema"]["properties"].items() if k != "onCall"}
    response = api.patch("/v1/blueprints/service", {"schema": {"properties": properties}}, format="json")
    assert response.status_code == 422, response.json()
    assert response.json()["message"].startswith("scorecards: scorecard 'readiness' would break: ")
    assert "onCall" in Blueprint.objects.get(identifier="service").schema["properties"]


def test_entities_of_blueprints_without_scorecards_carry_no_scorecards_key(scored_catalog):
    blueprint_create(actor=SYSTEM, data={"identifier": "plain", "title": "Plain", "schema": {"properties": {}}})
    entity_write_one(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="plain"), data={"identifier": "p"})
    api = api_for(UserFactory(admin=True))
    assert "scorecards" not in api.get("/v1/blueprints/plain/entities/p").json()["entity"]
