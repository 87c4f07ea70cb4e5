"""Every way a date-time enters the portal goes through its one date-time type: a value at the ends of time is a
422 naming the field, an accepted one is stored in UTC, and a value stored before these rules never breaks a page.

The first test is the report that opened issue 11: any member could lock a service with an `until` past year
9999 in UTC, after which nobody could unlock it and `/`, `/locks/` and `/deployments/` answered 500 for everyone."""
import importlib

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command

from actions.models import Run
from audit.models import AuditEvent
from catalog.models import Blueprint, Entity, Timer
from portal.actor import Actor
from tests.factories import BlueprintFactory, EntityFactory, UserFactory
from tests.support.deployment_contract import deployment_blueprints_install
from tests.support.api import api_for

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()
END_OF_TIME = "9999-12-31T23:59:59-01:00"  # year 10000 in UTC
START_OF_TIME = "0001-01-01T00:00:00+01:00"  # year 0 in UTC


def _refused(response, path):
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["ok"] is False and body["error"] == "invalid_request"
    assert body["message"].startswith(f"{path}: "), body["message"]
    return body["message"]


@pytest.fixture
def starter(db):
    call_command("load_starter", stdout=open("/dev/null", "w"))
    blueprints = {bp.identifier: bp for bp in Blueprint.objects.all()}
    EntityFactory(
        blueprint=blueprints["runningService"],
        identifier="CartService-production", relations={"service": "CartService", "environment": "production"})
    return blueprints


@pytest.mark.parametrize("until", [END_OF_TIME, START_OF_TIME, "2024-06-09T12:28:18", "next week"])
def test_a_lock_until_the_end_of_time_is_refused_naming_properties_until(starter, until):
    member = api_for(UserFactory(email="developer@example.com"))
    runs, events = Run.objects.count(), AuditEvent.objects.count()
    response = member.post("/v1/actions/lock_service/runs", {
        "entity": "CartService-production", "properties": {"reason": "x", "until": until}}, format="json")
    _refused(response, "properties.until")
    assert Run.objects.count() == runs and AuditEvent.objects.count() == events


@pytest.fixture
def timeline(db):
    return BlueprintFactory(identifier="Timeline", title="Timeline", schema={"properties": {
        "when": {"type": "string", "format": "date-time"},
        "expires": {"type": "string", "format": "timer"},
        "history": {"type": "array", "items": {"type": "string", "format": "date-time"}},
        "note": {"type": "string"},
    }})


@pytest.mark.parametrize("properties, path", [
    ({"when": END_OF_TIME}, "properties.when"),
    ({"when": START_OF_TIME}, "properties.when"),
    ({"when": "1969-12-31T23:59:59Z"}, "properties.when"),
    ({"when": "2024-02-30T10:00:00Z"}, "properties.when"),
    ({"when": "2024-06-09T10:00:00"}, "properties.when"),
    ({"expires": END_OF_TIME}, "properties.expires"),
    ({"history": ["2024-06-09T10:00:00Z", START_OF_TIME]}, "properties.history[1]"),
])
def test_entity_date_times_out_of_range_are_refused_at_their_path(admin_api, timeline, properties, path):
    response = admin_api.post("/v1/blueprints/Timeline/entities", {"identifier": "t1", "properties": properties},
                              format="json")
    assert "outside the supported range" in _refused(response, path) or "date" in response.json()["message"]
    assert not Entity.objects.filter(identifier="t1").exists() and not Timer.objects.exists()


def test_entity_date_times_are_stored_in_utc_and_timers_follow(admin_api, timeline):
    response = admin_api.post("/v1/blueprints/Timeline/entities", {"identifier": "t1", "properties": {
        "when": "2024-06-09t14:28:18.5+02:00", "expires": "2999-12-31T23:59:59.999z",
        "history": ["2024-06-09T10:00:00z", "2024-06-09T12:00:00+02:00"], "note": "2024-06-09T10:00:00+02:00"}},
        format="json")
    assert response.status_code == 201, response.json()
    properties = response.json()["entity"]["properties"]
    assert properties["when"] == "2024-06-09T12:28:18.500Z"
    assert properties["expires"] == "2999-12-31T23:59:59.999Z"
    assert properties["history"] == ["2024-06-09T10:00:00.000Z", "2024-06-09T10:00:00.000Z"]
    assert properties["note"] == "2024-06-09T10:00:00+02:00"  # a plain string is not a date-time: kept as sent
    timer = Timer.objects.get(entity__identifier="t1")
    assert timer.expires_at.isoformat() == "2999-12-31T23:59:59.999000+00:00"
    # `=` finds a stored date-time whichever way the query writes the instant.
    found = admin_api.post("/v1/blueprints/Timeline/entities/search", {"query": {"combinator": "and", "rules": [
        {"property": "when", "operator": "=", "value": "2024-06-09T14:28:18.500+02:00"}]}}, format="json")
    assert [e["identifier"] for e in found.json()["entities"]] == ["t1"]


def test_deployment_times_are_checked(admin_api):
    deployment_blueprints_install(SYSTEM)
    blueprints = {bp.identifier: bp for bp in Blueprint.objects.all()}
    EntityFactory(blueprint=blueprints["environment"], identifier="production")
    EntityFactory(blueprint=blueprints["Component"], identifier="CartService")
    report = {"service": "CartService", "environment": "production", "version": "1.0.0", "commitSha": "abc",
              "jobUrl": "https://ci.example.com/1"}
    for value in (START_OF_TIME, END_OF_TIME, "2024-06-09"):
        _refused(admin_api.post("/v1/deployments", {**report, "commitTime": value}, format="json"), "commitTime")
    assert not Entity.objects.filter(blueprint=blueprints["deployment"]).exists()
    response = admin_api.post("/v1/deployments", {**report, "commitTime": "2024-06-09T12:00:00+02:00"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["deployment"]["properties"]["commitTime"] == "2024-06-09T10:00:00.000Z"


@pytest.mark.parametrize("url, path", [
    ("/v1/dora?to=9999-12-31", "to"),
    ("/v1/dora?from=0001-01-01&to=2024-01-01", "from"),
    ("/v1/deployments?from=9999-12-31T23:59:59-01:00", "from"),
    ("/v1/audit-log?from=0001-01-01T00:00:00%2B01:00", "from"),
    ("/v1/audit-log?to=3000-01-01", "to"),
])
def test_query_parameters_at_the_ends_of_time_are_refused(admin_api, url, path):
    deployment_blueprints_install(SYSTEM)
    _refused(admin_api.get(url), path)


@pytest.mark.parametrize("rule, path", [
    ({"property": "when", "operator": "between", "value": {"from": "2024-01-01", "to": "9999-12-31"}},
     "query.rules[0].value.to"),
    ({"property": "when", "operator": ">", "value": START_OF_TIME}, "query.rules[0].value"),
    ({"property": "$createdAt", "operator": "=", "value": END_OF_TIME}, "query.rules[0].value"),
])
def test_search_dates_at_the_ends_of_time_are_refused(admin_api, timeline, rule, path):
    response = admin_api.post("/v1/blueprints/Timeline/entities/search",
                              {"query": {"combinator": "and", "rules": [rule]}}, format="json")
    _refused(response, path)


@pytest.fixture
def written_before_the_rules(starter):
    """Values an earlier version stored: past year 9999 and before year 1 in UTC, and offsets other than Z."""
    blueprints = starter
    running = Entity.objects.get(identifier="CartService-production")
    running.properties = {**running.properties, "locked": True, "lockReason": "freeze", "lockedBy": "dev@example.com",
                          "lockedAt": START_OF_TIME, "lockedUntil": END_OF_TIME, "deployedAt": END_OF_TIME}
    running.save()
    EntityFactory(
        blueprint=blueprints["deployment"],
        identifier="d1", relations={"runningService": "CartService-production"},
        properties={"version": "1", "status": "success", "finishedAt": "2024-06-09T10:00:00Z"})
    Entity.objects.filter(identifier="d1").update(properties={
        "version": "1", "status": "success", "commitTime": START_OF_TIME, "startedAt": END_OF_TIME,
        "finishedAt": "2024-06-09T12:00:00+02:00"})
    return blueprints


@pytest.mark.parametrize("url", ["/", "/locks/", "/deployments/", "/environments/", "/catalog/runningService/",
                                 "/catalog/deployment/", "/catalog/runningService/CartService-production/",
                                 "/catalog/deployment/d1/"])
def test_pages_survive_date_times_stored_before_the_rules(client, written_before_the_rules, url):
    for user in (UserFactory(email="dev@example.com"), UserFactory(email="root@example.com", admin=True)):
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200, (user.email, response.content[:500])


def test_the_api_serves_date_times_stored_before_the_rules(admin_api, written_before_the_rules):
    assert admin_api.get("/v1/locks/CartService/production").status_code == 423
    for url in ("/v1/blueprints/runningService/entities/CartService-production", "/v1/deployments",
                "/v1/running-services", "/v1/dora"):
        assert admin_api.get(url).status_code == 200, url


def test_the_migration_stores_earlier_date_times_in_utc(timeline):
    EntityFactory(blueprint=timeline, identifier="t1")
    Entity.objects.filter(identifier="t1").update(properties={
        "when": "2024-06-09T14:28:18+02:00", "expires": END_OF_TIME, "history": ["2024-06-09T10:00:00z"],
        "note": "2024-06-09T10:00:00+02:00"})
    migration = importlib.import_module("catalog.migrations.0004_datetimes_in_utc")
    migration.forwards(django_apps, None)
    assert Entity.objects.get(identifier="t1").properties == {
        "when": "2024-06-09T12:28:18.000Z", "expires": END_OF_TIME,  # refused by the type: left for readers to skip
        "history": ["2024-06-09T10:00:00.000Z"], "note": "2024-06-09T10:00:00+02:00"}
