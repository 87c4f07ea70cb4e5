import json
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from audit.models import AuditEvent
from catalog.models import Blueprint, Entity, Relation, Timer
from catalog.services.catalog_import import catalog_import
from catalog.services.entities import CREATE, PATCH, entity_write_one
from portal.actor import Actor
from portal.errors import ValidationFailed

pytestmark = pytest.mark.django_db

STARTER = ["environment", "runningService", "deployment", "devEnvironment", "cloudResource", "accessGrant"]
SEED = ["API", "Component", "Domain", "Resource", "System"]


def load_starter():
    out = StringIO()
    call_command("load_starter", stdout=out)
    return out.getvalue()


def write(blueprint, data, mode=CREATE, identifier=None):
    return entity_write_one(actor=Actor.system(), blueprint=Blueprint.objects.get(identifier=blueprint), data=data,
                            mode=mode, identifier=identifier).entity


def test_load_starter_on_empty_portal_loads_seed_then_starter():
    text = load_starter()
    assert "5 blueprints and 9 entities" in text and "Starter catalog: 6 blueprints and 3 entities added." in text
    assert sorted(Blueprint.objects.values_list("identifier", flat=True)) == sorted(SEED + STARTER)
    environments = Entity.objects.filter(blueprint__identifier="environment")
    assert sorted(environments.values_list("identifier", "properties")) == [
        ("development", {"type": "development", "locked": False}),
        ("production", {"type": "production", "locked": False}),
        ("staging", {"type": "staging", "locked": False})]
    running = Blueprint.objects.get(identifier="runningService")
    assert running.relations["service"]["target"] == "Component" and running.relations["service"]["required"] is True
    assert running.relations["environment"]["target"] == "environment"
    assert {k: v["path"] for k, v in running.mirror_properties.items()} == {
        "environmentType": "environment.type", "environmentLocked": "environment.locked", "serviceTitle": "service.$title"}
    assert Blueprint.objects.get(identifier="deployment").relations["runningService"]["target"] == "runningService"
    assert Blueprint.objects.get(identifier="devEnvironment").schema["properties"]["ttl"]["format"] == "timer"


def test_load_starter_is_idempotent_and_keeps_changed_data():
    load_starter()
    write("environment", {"properties": {"locked": True, "lockReason": "release freeze"}}, mode=PATCH, identifier="production")
    counts = (Blueprint.objects.count(), Entity.objects.count(), Relation.objects.count(), AuditEvent.objects.count())
    assert "0 blueprints and 0 entities added" in load_starter()
    assert (Blueprint.objects.count(), Entity.objects.count(), Relation.objects.count(), AuditEvent.objects.count()) == counts
    assert Entity.objects.get(identifier="production").properties["locked"] is True


def test_load_starter_onto_existing_seed_does_not_reload_it():
    call_command("load_catalog", stdout=StringIO())
    text = load_starter()
    assert "Loaded" not in text and "6 blueprints and 3 entities added" in text
    assert Blueprint.objects.count() == 11 and Entity.objects.count() == 12


def test_import_applies_mirrors_through_relations_to_blueprints_of_the_same_document():
    """The starter document alone, in reverse order: mirrors resolve in catalog_import's second pass."""
    call_command("load_catalog", stdout=StringIO())
    document = json.loads((settings.BASE_DIR / "catalog/fixtures/starter-catalog.json").read_text())
    document["blueprints"].reverse()
    catalog_import(actor=Actor.system(), document=document)
    running = Blueprint.objects.get(identifier="runningService")
    assert running.mirror_properties["environmentType"]["path"] == "environment.type"
    assert Blueprint.objects.get(identifier="deployment").relations["runningService"]["target"] == "runningService"


def test_running_service_validation_and_mirrors(admin_api):
    load_starter()
    entity = write("runningService", {"identifier": "CartService-production", "title": "CartService in production",
                                      "properties": {"version": "1.4.2", "health": "healthy", "jobUrl": "https://ci.example.com/1"},
                                      "relations": {"service": "CartService", "environment": "production"}})
    assert entity.properties["locked"] is False  # the default applies on create
    response = admin_api.get("/v1/blueprints/runningService/entities/CartService-production")
    assert response.status_code == 200 and response.json()["ok"] is True
    body = response.json()["entity"]
    assert body["relations"] == {"service": "CartService", "environment": "production"}
    assert body["properties"]["environmentType"] == "production"
    assert body["properties"]["environmentLocked"] is False
    assert body["properties"]["serviceTitle"] == "Cart Service"  # the Component's title
    with pytest.raises(ValidationFailed, match="health"):
        write("runningService", {"identifier": "CartService-staging", "properties": {"health": "fine"},
                                 "relations": {"service": "CartService", "environment": "staging"}})
    with pytest.raises(ValidationFailed, match="environment"):
        write("runningService", {"identifier": "CartService-qa", "relations": {"service": "CartService"}})
    deployment = write("deployment", {"identifier": "CartService-production-1.4.2-1700000000000",
                                      "properties": {"version": "1.4.2", "status": "success"},
                                      "relations": {"runningService": "CartService-production"}})
    assert deployment.outgoing.get().target.identifier == "CartService-production"


def test_dev_environment_timer_gets_a_timer_row():
    load_starter()
    entity = write("devEnvironment", {"identifier": "alice-feature-x",
                                      "properties": {"owner": "alice@example.com", "branch": "feature-x",
                                                     "url": "https://alice-feature-x.dev.example.com",
                                                     "ttl": "2030-01-01T00:00:00.000Z"}})
    timer = Timer.objects.get(entity=entity)
    assert timer.property == "ttl" and timer.expires_at.isoformat() == "2030-01-01T00:00:00+00:00"
