"""The Django admin as the configuration UI: saves and deletes go through the services (validated, audited
with origin ADMIN), errors land on the field their JSON path names, runtime rows are read-only."""
import json

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import get_user_perms

from audit import choices as audit_choices
from audit.models import AuditEvent
from catalog import choices
from catalog.models import Blueprint, Entity, Team
from catalog.services.permissions import blueprint_permissions_json
from portal.actor import AuditOrigin
from portal.models import ApiClient
from tests.factories import ApiClientFactory, BlueprintFactory, EntityFactory, TeamFactory, UserFactory
from tests.support.admin import SERVICE, blueprint_form, form_errors, url
from tests.support.api import bearer_api, token_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(db):
    return BlueprintFactory(**SERVICE)


def entity_form(blueprint, **overrides):
    data = {"blueprint": str(blueprint.pk), "identifier": "checkout", "title": "Checkout", "icon": "",
            "properties": {"replicas": 2}, "relations": {}, "team": []}
    data.update(overrides)
    return {key: (value if isinstance(value, str) else json.dumps(value)) for key, value in data.items()}


def admin_events():
    return list(AuditEvent.objects.filter(origin=AuditOrigin.ADMIN).order_by("id"))


# --- blueprints ---------------------------------------------------------------------------------------------

def test_blueprint_add_with_bad_schema_shows_the_error_at_the_schema_field(staff):
    bad = {"properties": {"x": {"type": "strin"}}}
    errors = form_errors(staff.post(url(Blueprint, "add"), blueprint_form(schema=bad)))
    assert list(errors) == ["schema"]
    assert errors["schema"][0].startswith("schema.properties.x.type: ")
    assert not Blueprint.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("field, value, path", [
    ("relations", {"owner": {"target": "Nowhere"}}, "relations.owner.target"),
    ("mirror_properties", {"m": {"path": "nothing.$title"}}, "mirrorProperties.m.path"),
    ("calculation_properties", {"c": {"calculation": ".properties | ((", "type": "string"}}, "calculationProperties.c"),
    ("identifier", "bad id!", "identifier"),
])
def test_blueprint_errors_land_on_the_field_their_path_names(staff, field, value, path):
    errors = form_errors(staff.post(url(Blueprint, "add"), blueprint_form(**{field: value})))
    assert errors[field][0].startswith(path), errors
    assert not Blueprint.objects.exists()


def test_blueprint_add_with_unparseable_json_is_a_field_error(staff):
    errors = form_errors(staff.post(url(Blueprint, "add"), blueprint_form(schema='{"properties": ')))
    assert list(errors) == ["schema"]
    assert not Blueprint.objects.exists()


def test_blueprint_add_creates_it_with_one_admin_audit_event(staff, admin_user):
    response = staff.post(url(Blueprint, "add"), blueprint_form(relations=SERVICE["relations"]))
    assert response.status_code == 302, form_errors(response)
    blueprint = Blueprint.objects.get(identifier="Service")
    assert blueprint.schema["properties"]["replicas"] == {"type": "number", "minimum": 1}
    assert blueprint.relations["dependsOn"]["target"] == "Service"
    assert blueprint.created_by == admin_user.email
    (event,) = AuditEvent.objects.all()
    assert (event.verb, event.origin, event.actor) == (audit_choices.BLUEPRINT_CREATED, "ADMIN", admin_user.email)
    assert event.diff["before"] is None and event.diff["after"]["identifier"] == "Service"
    # The new blueprint got its default grants from the service (Members read).
    assert blueprint_permissions_json(blueprint)["entities"]["read"]["roles"][-1] == choices.ROLE_MEMBER


def test_blueprint_add_of_an_existing_identifier_is_an_identifier_error(staff, service):
    errors = form_errors(staff.post(url(Blueprint, "add"), blueprint_form()))
    assert "identifier" in errors
    assert Blueprint.objects.count() == 1


def test_blueprint_change_form_shows_pretty_json_and_saves_through_the_service(staff, service, admin_user):
    page = staff.get(url(Blueprint, "change", service.pk))
    assert page.status_code == 200
    html = page.content.decode()
    assert "&quot;replicas&quot;: {\n" in html  # indented JSON in a monospace textarea
    assert "monospace" in html
    assert "Object permissions" in html  # guardian's object-permission pages are linked

    schema = {"properties": {**SERVICE["schema"]["properties"], "tier": {"type": "string", "enum": ["a", "b"]}}}
    response = staff.post(url(Blueprint, "change", service.pk),
                          blueprint_form(identifier="ignored", title="Services", schema=schema, relations=SERVICE["relations"]))
    assert response.status_code == 302, form_errors(response)
    service.refresh_from_db()
    assert service.identifier == "Service"  # read-only on change
    assert service.title == "Services" and "tier" in service.schema["properties"]
    assert service.version == 2
    (event,) = admin_events()
    assert event.verb == audit_choices.BLUEPRINT_UPDATED and event.actor == admin_user.email
    assert event.diff["before"]["title"] == "Service" and event.diff["after"]["title"] == "Services"


def test_blueprint_change_refused_by_existing_entities_shows_the_error_and_keeps_everything(staff, service):
    EntityFactory(blueprint=service, identifier="a", properties={"language": "go"})
    schema = {"properties": {**SERVICE["schema"]["properties"], "language": {"type": "number"}}}
    errors = form_errors(staff.post(url(Blueprint, "change", service.pk), blueprint_form(schema=schema)))
    assert errors["schema"][0].startswith("schema.properties.language: 1 entity would become invalid")
    service.refresh_from_db()
    assert service.schema["properties"]["language"] == {"type": "string"} and service.version == 1
    assert not admin_events()


def test_blueprint_delete_refusal_is_a_message_and_delete_goes_through_the_service(staff, service):
    EntityFactory(blueprint=service, identifier="a")
    page = staff.get(url(Blueprint, "delete", service.pk))
    assert page.status_code == 200
    response = staff.post(url(Blueprint, "delete", service.pk), {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert any("still has 1 entities" in str(m) for m in response.context["messages"])
    assert Blueprint.objects.filter(pk=service.pk).exists()
    assert not admin_events()

    Entity.objects.all().delete()
    response = staff.post(url(Blueprint, "delete", service.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Blueprint.objects.exists()
    (event,) = admin_events()
    assert event.verb == audit_choices.BLUEPRINT_DELETED and event.diff["after"] is None


def test_blueprint_object_permissions_pages_save_through_the_audited_services(staff, service):
    dev = UserFactory(email="dev@example.com")
    team = TeamFactory(name="platform")
    base = url(Blueprint, "change", service.pk).rstrip("/").rsplit("/", 1)[0]
    user_page = f"{base}/permissions/user-manage/{dev.pk}/"
    assert staff.get(user_page).status_code == 200
    response = staff.post(user_page, {"permissions": ["moderate_blueprint", "update_entities"]})
    assert response.status_code == 302
    assert set(get_user_perms(dev, service)) == {"moderate_blueprint", "update_entities"}
    verbs = [e.verb for e in admin_events()]
    assert sorted(verbs) == [audit_choices.BLUEPRINT_PERMISSIONS_UPDATED, audit_choices.USER_UPDATED]

    response = staff.post(f"{base}/permissions/group-manage/{team.group.pk}/", {"permissions": ["read_entities"]})
    assert response.status_code == 302
    assert blueprint_permissions_json(service)["entities"]["read"]["teams"] == ["platform"]
    assert blueprint_permissions_json(service)["entities"]["update"]["users"] == ["dev@example.com"]

    # Revoking through the page removes exactly that grant.
    staff.post(user_page, {"permissions": ["update_entities"]})
    assert set(get_user_perms(dev, service)) == {"update_entities"}
    assert len(admin_events()) == 4


# --- entities -----------------------------------------------------------------------------------------------

def test_entity_add_with_an_invalid_property_shows_the_error_at_the_properties_field(staff, service):
    errors = form_errors(staff.post(url(Entity, "add"), entity_form(service, properties={"replicas": 0})))
    assert list(errors) == ["properties"]
    assert errors["properties"][0].startswith("properties.replicas: ")
    assert not Entity.objects.exists()
    assert not AuditEvent.objects.filter(resource_type="entity").exists()


@pytest.mark.parametrize("field, value, path", [
    ("relations", {"dependsOn": ["nowhere"]}, "relations.dependsOn"),
    ("relations", {"nope": "x"}, "relations.nope"),
    ("team", ["no-such-team"], "team"),
    ("identifier", "bad id!", "identifier"),
])
def test_entity_errors_land_on_their_fields(staff, service, field, value, path):
    errors = form_errors(staff.post(url(Entity, "add"), entity_form(service, **{field: value})))
    assert errors[field][0].startswith(path), errors
    assert not Entity.objects.exists()


def test_entity_add_and_change_save_through_the_service(staff, service, admin_user):
    TeamFactory(name="platform")
    EntityFactory(blueprint=service, identifier="db")
    response = staff.post(url(Entity, "add"), entity_form(service, relations={"dependsOn": ["db"]}, team=["platform"]))
    assert response.status_code == 302, form_errors(response)
    entity = Entity.objects.get(identifier="checkout")
    assert entity.properties == {"replicas": 2} and entity.created_by == admin_user.email
    assert list(entity.teams.values_list("name", flat=True)) == ["platform"]
    assert list(entity.outgoing.values_list("target__identifier", flat=True)) == ["db"]
    (created,) = admin_events()
    assert created.verb == audit_choices.ENTITY_CREATED and created.diff["after"]["relations"] == {"dependsOn": ["db"]}

    page = staff.get(url(Entity, "change", entity.pk))
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert form.initial["relations"] == {"dependsOn": ["db"]} and form.initial["team"] == ["platform"]

    response = staff.post(url(Entity, "change", entity.pk),
                          entity_form(service, properties={"language": "go"}, relations={}, team=[]))
    assert response.status_code == 302, form_errors(response)
    entity.refresh_from_db()
    assert entity.properties == {"language": "go"}  # replaced, not merged
    assert not entity.teams.exists() and not entity.outgoing.exists()
    updated = admin_events()[-1]
    assert updated.verb == audit_choices.ENTITY_UPDATED
    assert updated.diff["before"]["properties"] == {"replicas": 2} and updated.diff["after"]["properties"] == {"language": "go"}


def test_entity_add_of_an_existing_identifier_is_an_identifier_error(staff, service):
    EntityFactory(blueprint=service, identifier="checkout")
    errors = form_errors(staff.post(url(Entity, "add"), entity_form(service)))
    assert list(errors) == ["identifier"]
    assert "already exists" in errors["identifier"][0]


def test_entity_delete_refused_for_dependents_then_deleted_through_the_service(staff, service):
    """Only a required relation blocks a delete (an optional one is cleared)."""
    deployment = BlueprintFactory(
        identifier="Deployment", title="Deployment", schema={"properties": {}},
        relations={"service": {"target": "Service", "many": False, "required": True}})
    db = EntityFactory(blueprint=service, identifier="db")
    app = EntityFactory(blueprint=deployment, identifier="app", relations={"service": "db"})
    response = staff.post(url(Entity, "delete", db.pk), {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert any("Deployment:app" in str(m) for m in response.context["messages"])
    assert Entity.objects.filter(pk=db.pk).exists()

    # The bulk action: refused as a whole, then allowed once the dependent goes with it.
    changelist = url(Entity, "changelist")
    response = staff.post(changelist, {"action": "delete_selected", "_selected_action": [db.pk], "post": "yes"}, follow=True)
    assert any("Deployment:app" in str(m) for m in response.context["messages"])
    assert Entity.objects.count() == 2
    for selected in (app.pk, db.pk):  # the dependent first, then what it required
        response = staff.post(changelist, {"action": "delete_selected", "_selected_action": [selected], "post": "yes"})
        assert response.status_code == 302
    assert not Entity.objects.exists()
    assert sorted(e.identifier for e in admin_events()) == ["app", "db"]


# --- teams --------------------------------------------------------------------------------------------------

def test_team_add_change_delete_through_the_services(staff):
    ann, bob = UserFactory(email="ann@example.com"), UserFactory(email="bob@example.com")
    response = staff.post(url(Team, "add"), {"name": "platform", "description": "infra", "members": [ann.pk, bob.pk]})
    assert response.status_code == 302, form_errors(response)
    team = Team.objects.get(name="platform")
    assert sorted(team.group.user_set.values_list("email", flat=True)) == ["ann@example.com", "bob@example.com"]

    errors = form_errors(staff.post(url(Team, "add"), {"name": "platform", "members": []}))
    assert "name" in errors

    response = staff.post(url(Team, "change", team.pk), {"name": "platform-eng", "description": "", "members": [bob.pk]})
    assert response.status_code == 302, form_errors(response)
    team.refresh_from_db()
    assert team.name == team.group.name == "platform-eng"
    assert list(team.group.user_set.values_list("email", flat=True)) == ["bob@example.com"]

    assert staff.post(url(Team, "delete", team.pk), {"post": "yes"}).status_code == 302
    assert not Team.objects.exists()
    verbs = [e.verb for e in admin_events()]
    assert verbs == [audit_choices.TEAM_CREATED, audit_choices.TEAM_UPDATED, audit_choices.TEAM_DELETED]
    assert admin_events()[1].diff["after"] == {"name": "platform-eng", "description": "", "users": ["bob@example.com"]}


# --- the audit log and API credentials ------------------------------------------------------------------------

def test_audit_admin_is_read_only_for_superusers_too(staff, service):
    event = AuditEvent.objects.get()
    assert staff.get(url(AuditEvent, "add")).status_code == 403
    assert staff.post(url(AuditEvent, "change", event.pk), {"identifier": "forged"}).status_code == 403
    assert staff.post(url(AuditEvent, "delete", event.pk), {"post": "yes"}).status_code == 403
    response = staff.post(url(AuditEvent, "changelist"), {"action": "delete_selected", "_selected_action": [event.pk],
                                                          "post": "yes"})
    assert AuditEvent.objects.get().identifier == "Service"
    assert response.status_code in (200, 302)
    page = staff.get(url(AuditEvent, "change", event.pk))
    assert page.status_code == 200
    html = page.content.decode()
    assert "name=\"identifier\"" not in html  # shown, not editable
    assert "&quot;identifier&quot;: &quot;Service&quot;" in html  # the pretty-printed diff
    assert staff.get(url(AuditEvent, "changelist") + "?q=Service").context["cl"].result_count == 1


def test_api_client_admin_lists_read_only_and_deactivates_through_the_service(staff, admin_user):
    client = ApiClientFactory(user=admin_user)
    bearer = bearer_api(token_of(client))
    assert bearer.get("/v1/blueprints").status_code == 200
    assert staff.get(url(ApiClient, "add")).status_code == 403
    page = staff.get(url(ApiClient, "change", client.pk))
    assert page.status_code == 200
    client.refresh_from_db()
    html = page.content.decode()
    assert client.secret_hash not in html and client.token not in html
    assert "name=\"is_active\"" not in html

    response = staff.post(url(ApiClient, "changelist"), {"action": "deactivate", "_selected_action": [client.pk]})
    assert response.status_code == 302
    client.refresh_from_db()
    assert client.is_active is False and client.token == ""
    (event,) = admin_events()
    assert event.verb == audit_choices.API_CLIENT_DEACTIVATED and event.identifier == client.client_id
    assert event.diff["before"]["active"] is True and event.diff["after"]["active"] is False
    assert bearer.get("/v1/blueprints").status_code == 401  # its live token stops working at once
    # Deactivating again changes and records nothing.
    staff.post(url(ApiClient, "changelist"), {"action": "deactivate", "_selected_action": [client.pk]})
    assert len(admin_events()) == 1


def test_admin_pages_need_staff(client, member_user):
    client.force_login(member_user)
    assert client.get(url(Blueprint, "changelist")).status_code == 302  # to the admin login


# --- every changelist renders, with a query count that does not grow -------------------------------------------

def test_every_registered_changelist_renders(staff, service):
    EntityFactory(blueprint=service, identifier="a")
    for model in admin.site._registry:
        response = staff.get(url(model, "changelist"))
        assert response.status_code == 200, model


def test_add_and_change_pages_render(staff, service):
    entity = EntityFactory(blueprint=service, identifier="a")
    team = TeamFactory(name="platform")
    for model in (Blueprint, Entity, Team):
        assert staff.get(url(model, "add")).status_code == 200, model
    for model, pk in ((Blueprint, service.pk), (Entity, entity.pk), (Team, team.pk), (AuditEvent, AuditEvent.objects.first().pk)):
        assert staff.get(url(model, "change", pk)).status_code == 200, model
    assert staff.get(url(Blueprint, "delete", service.pk)).status_code == 200
    assert staff.get(url(Blueprint, "change", service.pk).rstrip("/").rsplit("/", 1)[0] + "/permissions/").status_code == 200


def _queries(staff, page):
    with CaptureQueriesContext(connection) as ctx:
        response = staff.get(page)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.context["cl"].result_count


def test_changelist_query_counts_do_not_grow_with_rows(staff, service):
    team = TeamFactory(name="platform")
    pages = [url(Entity, "changelist"), url(Entity, "changelist") + "?q=e1", url(Team, "changelist"),
             url(Blueprint, "changelist"), url(AuditEvent, "changelist"), url(ApiClient, "changelist"),
             url(Entity, "changelist") + f"?team={team.pk}&blueprint__id__exact={service.pk}",
             url(AuditEvent, "changelist") + "?resource_type=entity&action=CREATE&status=SUCCESS"]
    EntityFactory(blueprint=service, identifier="e1", team=["platform"])
    ApiClientFactory(user=UserFactory(email="ci-0@example.com"))
    few = [_queries(staff, page) for page in pages]
    for i in range(2, 31):
        EntityFactory(blueprint=service, identifier=f"e{i}", team=["platform"], relations={"dependsOn": ["e1"]})
        TeamFactory(name=f"team-{i}", users=["ci-0@example.com"])
        BlueprintFactory(identifier=f"bp{i}", title="x", schema={"properties": {}})
        ApiClientFactory(user=UserFactory(email=f"ci-{i}@example.com"))
    many = [_queries(staff, page) for page in pages]
    assert [count for count, _ in many] == [count for count, _ in few]
    assert [rows for _, rows in few] == [1, 1, 1, 1, few[4][1], 1, 1, 1]
    assert [rows for _, rows in many] == [30, 11, 30, 30, many[4][1], 30, 30, 30]
