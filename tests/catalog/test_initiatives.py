"""Initiatives: a goal over a scorecard's level or rules, due by a date — checked at the field, audited, its progress
per team and its failing entities (with what each must fix) counted over what the reader may read, kept current by
entity writes, and protected from a scorecard change that would pull the ground from under it."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from catalog.models import Blueprint, Initiative
from catalog.selectors.initiatives import initiative_failing_visible_to, initiative_progress_visible_to
from catalog.services.blueprints import blueprint_update
from catalog.services.initiatives import initiative_create
from catalog.services.permissions import blueprint_permissions_update
from catalog.services.scorecards import scorecard_create
from portal.actor import Actor
from portal.errors import ValidationFailed
from tests.factories import BlueprintFactory, EntityFactory, UserFactory
from tests.support.api import api_for

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()


def readiness_rule(identifier, title, level, prop):
    return {"identifier": identifier, "title": title, "description": f"Set {prop}.", "level": level,
            "query": {"combinator": "and", "conditions": [{"property": prop, "operator": "isNotEmpty"}]}}


def initiative_body(**changes):
    return {"identifier": "silverByQ1", "title": "Every production service at Silver", "blueprint": "service",
            "scorecard": "readiness", "level": "Silver",
            "filter": {"combinator": "and", "conditions": [{"property": "tier", "operator": "=", "value": "prod"}]},
            "dueDate": "2027-03-31", **changes}


def service(identifier, team, **properties):
    EntityFactory(blueprint="service", identifier=identifier, team=[team] if team else [], properties=properties)


@pytest.fixture
def goal_catalog(db):
    UserFactory(email="admin@example.com", admin=True)
    UserFactory(email="pay@example.com", teams=["payments"])
    UserFactory(email="ops@example.com", teams=["platform"])
    BlueprintFactory(identifier="service", title="Service", schema={"properties": {
        "readme": {"type": "string"}, "onCall": {"type": "string"}, "runbook": {"type": "string"},
        "tier": {"type": "string"}}})
    blueprint = Blueprint.objects.get(identifier="service")
    scorecard_create(actor=SYSTEM, blueprint=blueprint, data={"identifier": "readiness", "title": "Readiness", "rules": [
        readiness_rule("hasReadme", "Has a README", "Bronze", "readme"),
        readiness_rule("hasOnCall", "Has on-call", "Silver", "onCall"),
        readiness_rule("hasRunbook", "Has a runbook", "Gold", "runbook")]})
    service("checkout", "payments", tier="prod", readme="r", onCall="o")
    service("billing", "payments", tier="prod", readme="r")
    service("ledger", "platform", tier="prod")
    service("orphan", None, tier="prod", readme="r", onCall="o", runbook="b")
    service("sandbox", "platform", tier="dev")  # left out by the initiative's filter
    blueprint_permissions_update(actor=SYSTEM, blueprint=blueprint,
                                 data={"entities": {"read": {"roles": [], "ownedByTeam": True}}})
    return blueprint


def admin_api():
    return api_for(UserFactory._meta.model.objects.get(email="admin@example.com"))


def created(**changes):
    response = admin_api().post("/v1/initiatives", initiative_body(**changes), format="json")
    assert response.status_code == 201, response.json()
    return response.json()["initiative"]


def test_an_initiative_is_created_audited_and_returned_with_its_progress(goal_catalog):
    initiative = created()
    assert initiative["dueDate"] == "2027-03-31" and initiative["level"] == "Silver"
    assert initiative["progress"]["total"] == 4 and initiative["progress"]["done"] == 2
    assert initiative["progress"]["percent"] == 50 and initiative["progress"]["status"] == "IN_PROGRESS"
    teams = {t["team"]: (t["total"], t["done"]) for t in initiative["progress"]["teams"]}
    assert teams == {"payments": (2, 1), "platform": (1, 0), None: (1, 1)}
    event = AuditEvent.objects.get(resource_type="initiative", identifier="silverByQ1")
    assert event.verb == "catalog.initiative.created" and event.blueprint == "service"
    assert event.diff["after"]["scorecard"] == "readiness"


def test_the_failing_entities_say_which_rules_each_must_fix(goal_catalog):
    created()
    body = admin_api().get("/v1/initiatives/silverByQ1").json()
    assert body["failingTotal"] == 2
    fixes = {e["identifier"]: [r["identifier"] for r in e["fix"]] for e in body["failing"]}
    assert fixes == {"billing": ["hasOnCall"], "ledger": ["hasReadme", "hasOnCall"]}  # Gold's runbook is not asked
    ledger = next(e for e in body["failing"] if e["identifier"] == "ledger")
    assert ledger["teams"] == ["platform"] and ledger["level"] == "Basic"
    assert ledger["fix"][0]["title"] == "Has a README" and ledger["fix"][0]["description"] == "Set readme."
    only_payments = admin_api().get("/v1/initiatives/silverByQ1", {"team": "payments"}).json()
    assert [e["identifier"] for e in only_payments["failing"]] == ["billing"]
    assert admin_api().get("/v1/initiatives/silverByQ1", {"limit": 1}).json()["failingTotal"] == 2


def test_named_rules_are_asked_besides_the_level(goal_catalog):
    created(level=None, rules=["hasRunbook"], identifier="runbooks")
    body = admin_api().get("/v1/initiatives/runbooks").json()
    assert body["initiative"]["progress"]["done"] == 1  # only orphan has a runbook
    assert {e["identifier"]: [r["identifier"] for r in e["fix"]] for e in body["failing"]}["checkout"] == ["hasRunbook"]
    created(identifier="both", rules=["hasRunbook"])
    assert admin_api().get("/v1/initiatives/both").json()["initiative"]["progress"]["done"] == 1


def test_progress_follows_the_fix_of_an_entity(goal_catalog):
    created()
    api = admin_api()
    response = api.patch("/v1/blueprints/service/entities/billing", {"properties": {"onCall": "pager"}}, format="json")
    assert response.status_code == 200
    progress = api.get("/v1/initiatives/silverByQ1").json()["initiative"]["progress"]
    assert (progress["done"], progress["total"]) == (3, 4)


def test_a_member_counts_only_the_entities_they_may_read(goal_catalog):
    created()
    member = api_for(UserFactory._meta.model.objects.get(email="pay@example.com"))
    body = member.get("/v1/initiatives/silverByQ1").json()
    assert (body["initiative"]["progress"]["total"], body["initiative"]["progress"]["done"]) == (2, 1)
    assert [t["team"] for t in body["initiative"]["progress"]["teams"]] == ["payments"]
    assert [e["identifier"] for e in body["failing"]] == ["billing"]
    listed = member.get("/v1/initiatives").json()["initiatives"]
    assert listed[0]["progress"]["total"] == 2


def test_only_moderators_of_the_blueprint_change_initiatives(goal_catalog):
    member = api_for(UserFactory._meta.model.objects.get(email="pay@example.com"))
    assert member.post("/v1/initiatives", initiative_body(), format="json").status_code == 403
    created()
    assert member.put("/v1/initiatives/silverByQ1", initiative_body(title="Mine"), format="json").status_code == 403
    assert member.delete("/v1/initiatives/silverByQ1").status_code == 403
    assert Initiative.objects.get().title == "Every production service at Silver"


def test_put_replaces_and_delete_removes_each_audited(goal_catalog):
    created()
    api = admin_api()
    response = api.put("/v1/initiatives/silverByQ1", initiative_body(level="Gold", dueDate="2027-06-30"), format="json")
    assert response.status_code == 200 and response.json()["initiative"]["level"] == "Gold"
    assert response.json()["initiative"]["progress"]["done"] == 1
    assert api.delete("/v1/initiatives/silverByQ1").status_code == 200
    assert api.get("/v1/initiatives/silverByQ1").status_code == 404
    verbs = list(AuditEvent.objects.filter(resource_type="initiative").order_by("id").values_list("verb", flat=True))
    assert verbs == ["catalog.initiative.created", "catalog.initiative.updated", "catalog.initiative.deleted"]


def test_a_body_from_get_is_taken_back_by_put(goal_catalog):
    initiative = created()
    response = admin_api().put("/v1/initiatives/silverByQ1", initiative, format="json")
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize("changes, path", [
    ({"scorecard": "nope"}, "scorecard"),
    ({"blueprint": "nope"}, "blueprint"),
    ({"level": "Platinum"}, "level"),
    ({"level": "Basic"}, "level"),  # every entity starts there
    ({"level": None, "rules": []}, "level"),  # neither a level nor rules: no goal
    ({"rules": ["hasReadme", "nope"]}, "rules[1]"),
    ({"rules": ["hasReadme", "hasReadme"]}, "rules"),
    ({"dueDate": "2027-02-30"}, "dueDate"),
    ({"dueDate": "31/03/2027"}, "dueDate"),
    ({"dueDate": "9999-12-31"}, "dueDate"),
    ({"dueDate": 20270331}, "dueDate"),
    ({"title": "x\x00y"}, "title"),
    ({"title": "   "}, "title"),
    ({"title": 10 ** 40}, "title"),
    ({"identifier": "../etc/passwd"}, "identifier"),
    ({"surprise": 1}, "surprise"),
    ({"filter": {"combinator": "and", "conditions": [{"property": "nope", "operator": "=", "value": 1}]}},
     "filter.conditions[0].property"),
    ({"filter": {"combinator": "xor", "conditions": []}}, "filter.combinator"),
])
def test_bad_definitions_are_refused_naming_the_field(goal_catalog, changes, path):
    response = admin_api().post("/v1/initiatives", initiative_body(**changes), format="json")
    assert response.status_code == 422, response.json()
    assert response.json()["message"].startswith(f"{path}: "), response.json()
    assert not Initiative.objects.exists()


def test_nan_and_deep_nesting_are_refused_not_crashed_on(goal_catalog):
    api = admin_api()
    response = api.post("/v1/initiatives", data='{"identifier": "x", "title": NaN}', content_type="application/json")
    assert response.status_code in (400, 422)
    depth = 5000
    deep = '{"combinator": "and", "conditions": [' * depth + "]}" * depth
    body = '{"identifier": "deep", "title": "Deep", "blueprint": "service", "scorecard": "readiness", ' \
           f'"level": "Silver", "dueDate": "2027-03-31", "filter": {deep}}}'
    response = api.post("/v1/initiatives", data=body, content_type="application/json")
    assert response.status_code in (400, 422) and response.json()["ok"] is False


def test_a_duplicate_identifier_is_a_conflict(goal_catalog):
    created()
    response = admin_api().post("/v1/initiatives", initiative_body(), format="json")
    assert response.status_code == 409


def test_a_scorecard_change_that_would_strand_an_initiative_is_refused(goal_catalog):
    created(rules=["hasRunbook"])
    api = admin_api()
    readiness = api.get("/v1/blueprints/service/scorecards/readiness").json()["scorecard"]
    without_runbook = {**readiness, "rules": [r for r in readiness["rules"] if r["identifier"] != "hasRunbook"]}
    response = api.put("/v1/blueprints/service/scorecards/readiness", without_runbook, format="json")
    assert response.status_code == 409 and "silverByQ1" in response.json()["message"]
    response = api.delete("/v1/blueprints/service/scorecards/readiness")
    assert response.status_code == 409
    assert api.put("/v1/blueprints/service/scorecards", [], format="json").status_code == 409
    other_levels = {**readiness, "levels": [{"title": "Low", "color": "red"}, {"title": "High", "color": "green"}],
                    "rules": [{**r, "level": "High"} for r in readiness["rules"]]}
    assert api.put("/v1/blueprints/service/scorecards/readiness", other_levels, format="json").status_code == 409
    assert len(Blueprint.objects.get(identifier="service").scorecards[0]["rules"]) == 3
    assert api.delete("/v1/blueprints/service?delete_entities=true").status_code == 409


def test_a_blueprint_change_that_would_break_an_initiative_filter_is_refused(goal_catalog):
    created()
    blueprint = Blueprint.objects.get(identifier="service")
    schema = {"properties": {key: {"type": "string"} for key in ("readme", "onCall", "runbook")}}
    with pytest.raises(ValidationFailed) as refused:
        blueprint_update(actor=SYSTEM, blueprint=blueprint, data={"title": "Service", "schema": schema})
    assert refused.value.errors[0].path == "initiatives" and "silverByQ1" in refused.value.message


def test_status_says_overdue_complete_or_nothing_covered(goal_catalog):
    created(dueDate=(timezone.localdate() - timedelta(days=1)).isoformat())
    assert admin_api().get("/v1/initiatives/silverByQ1").json()["initiative"]["progress"]["status"] == "OVERDUE"
    created(identifier="dev", filter={"combinator": "and", "conditions": [
        {"property": "tier", "operator": "=", "value": "nothing-here"}]})
    progress = admin_api().get("/v1/initiatives/dev").json()["initiative"]["progress"]
    assert progress["status"] == "NO_ENTITIES" and progress["percent"] is None
    created(identifier="bronze", level="Bronze", filter=None, rules=None)
    api = admin_api()
    api.patch("/v1/blueprints/service/entities/ledger", {"properties": {"readme": "r"}}, format="json")
    api.patch("/v1/blueprints/service/entities/sandbox", {"properties": {"readme": "r"}}, format="json")
    assert api.get("/v1/initiatives/bronze").json()["initiative"]["progress"]["status"] == "COMPLETE"


def test_progress_reads_take_the_same_queries_at_any_size(goal_catalog):
    initiative = initiative_create(actor=SYSTEM, data=initiative_body())
    admin = UserFactory._meta.model.objects.get(email="admin@example.com")

    def queries():
        with CaptureQueriesContext(connection) as captured:
            initiative_progress_visible_to(admin, initiative)
            initiative_failing_visible_to(admin, initiative)
        return len(captured)

    few = queries()
    for i in range(30):
        service(f"more-{i}", "payments" if i % 2 else "platform", tier="prod")
    assert queries() == few
