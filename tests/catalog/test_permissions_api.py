"""GET/PATCH /v1/blueprints/{bp}/permissions, and what the grants let members do with entities."""
import pytest
from django.contrib.auth import get_user_model

from audit.models import AuditEvent
from catalog.models import Blueprint, Entity
from catalog.services.entities import entity_write_one
from catalog.services.users import user_update
from portal.actor import Actor
from tests.factories import BlueprintFactory, EntityFactory, UserFactory
from tests.support.api import api_for

pytestmark = pytest.mark.django_db

SERVICE = {
    "identifier": "Service",
    "title": "Service",
    "schema": {"properties": {"language": {"type": "string"}, "replicas": {"type": "number"}, "tier": {"type": "string"}}},
    "relations": {"domain": {"target": "Domain", "many": False}},
}
ADMIN_ROLES = ["Admin", "Service-moderator"]
NO_GRANT = {"roles": ADMIN_ROLES, "users": [], "teams": [], "ownedByTeam": False}


@pytest.fixture
def owned_services(db):
    """Service and Domain blueprints; teams platform (dev@) and payments (pay@); one entity per team and one unowned."""
    BlueprintFactory(identifier="Domain", title="Domain", schema={"properties": {}})
    BlueprintFactory(**SERVICE)
    UserFactory(email="dev@example.com", teams=["platform"])
    UserFactory(email="pay@example.com", teams=["payments"])
    UserFactory(email="other@example.com")
    service = blueprint("Service")
    for identifier, teams in (("checkout", ["payments"]), ("portal", ["platform"]), ("orphan", [])):
        EntityFactory(blueprint=service, identifier=identifier, team=teams, properties={"language": "Go", "tier": "1"})


def blueprint(identifier):
    return Blueprint.objects.get(identifier=identifier)


def api(email):
    return api_for(get_user_model().objects.get(email=email))


def patch_permissions(client, body, bp="Service"):
    return client.patch(f"/v1/blueprints/{bp}/permissions", body, format="json")


def identifiers(response):
    assert response.status_code == 200, response.json()
    return sorted(e["identifier"] for e in response.json()["entities"])


def post_entity(client, identifier, teams=(), **properties):
    return client.post("/v1/blueprints/Service/entities",
                       {"identifier": identifier, "team": list(teams), "properties": properties}, format="json")


def test_defaults_of_a_new_blueprint(admin_api, owned_services):
    response = admin_api.get("/v1/blueprints/Service/permissions")
    assert response.status_code == 200, response.json()
    entities = response.json()["permissions"]["entities"]
    assert entities["read"] == {**NO_GRANT, "roles": ADMIN_ROLES + ["Member"]}
    assert entities["register"] == entities["update"] == entities["unregister"] == NO_GRANT
    assert entities["updateProperties"] == {"language": NO_GRANT, "replicas": NO_GRANT, "tier": NO_GRANT}
    assert entities["updateRelations"] == {"domain": NO_GRANT}

    member = api("other@example.com")
    assert member.get("/v1/blueprints/Service/permissions").json() == response.json()
    assert identifiers(member.get("/v1/blueprints/Service/entities")) == ["checkout", "orphan", "portal"]
    assert member.get("/v1/blueprints/Service/entities/orphan").status_code == 200
    assert member.get("/v1/blueprints/Service/entities-count").json() == {"ok": True, "count": 3}
    refused = [
        post_entity(member, "new", language="Go"),
        member.patch("/v1/blueprints/Service/entities/orphan", {"properties": {"tier": "2"}}, format="json"),
        member.put("/v1/blueprints/Service/entities/orphan", {"properties": {"language": "Go"}}, format="json"),
        member.delete("/v1/blueprints/Service/entities/orphan"),
        member.post("/v1/blueprints/Service/bulk/entities/delete", {"entities": ["orphan"]}, format="json"),
    ]
    for r in refused:
        assert r.status_code == 403, r.json()
        assert r.json()["ok"] is False and r.json()["error"] == "forbidden"
    assert Entity.objects.count() == 3
    assert Entity.objects.get(identifier="orphan").properties == {"language": "Go", "tier": "1"}


def test_member_cannot_patch_permissions(owned_services):
    member = api("dev@example.com")
    response = patch_permissions(member, {"entities": {"register": {"roles": ["Member"]}}})
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    assert post_entity(member, "new", language="Go").status_code == 403
    assert not AuditEvent.objects.filter(verb="catalog.blueprint.permissions_updated").exists()


def test_register_granted_to_a_team(admin_api, owned_services):
    response = patch_permissions(admin_api, {"entities": {"register": {"teams": ["platform"]}}})
    assert response.status_code == 200, response.json()
    assert response.json()["permissions"]["entities"]["register"] == {**NO_GRANT, "teams": ["platform"]}
    (event,) = AuditEvent.objects.filter(verb="catalog.blueprint.permissions_updated")
    assert event.identifier == "Service" and event.actor == "admin@example.com"
    assert event.diff["before"]["entities"]["register"] == NO_GRANT
    assert event.diff["after"]["entities"]["register"]["teams"] == ["platform"]
    assert event.diff["before"]["entities"]["read"] == event.diff["after"]["entities"]["read"]  # untouched verbs stay

    created = post_entity(api("dev@example.com"), "new", language="Go")
    assert created.status_code == 201, created.json()
    assert created.json()["entity"]["createdBy"] == "dev@example.com"
    for email in ("pay@example.com", "other@example.com"):
        refused = post_entity(api(email), f"by-{email}", language="Go")
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert sorted(Entity.objects.values_list("identifier", flat=True)) == ["checkout", "new", "orphan", "portal"]
    # register grants create, not update
    dev = api("dev@example.com")
    assert dev.patch("/v1/blueprints/Service/entities/new", {"properties": {"tier": "2"}}, format="json").status_code == 403


def test_register_granted_to_a_user_and_revoked(admin_api, owned_services):
    assert patch_permissions(admin_api, {"entities": {"register": {"users": ["other@example.com"]}}}).status_code == 200
    other = api("other@example.com")
    assert post_entity(other, "one", language="Go").status_code == 201
    response = patch_permissions(admin_api, {"entities": {"register": {"users": []}}})
    assert response.json()["permissions"]["entities"]["register"] == NO_GRANT
    assert post_entity(other, "two", language="Go").status_code == 403


def test_owned_by_team_read_and_update(admin_api, owned_services):
    response = patch_permissions(admin_api, {"entities": {"read": {"roles": [], "ownedByTeam": True},
                                                          "update": {"ownedByTeam": True}}})
    assert response.status_code == 200, response.json()
    entities = response.json()["permissions"]["entities"]
    assert entities["read"] == {**NO_GRANT, "ownedByTeam": True}
    assert entities["update"] == {**NO_GRANT, "ownedByTeam": True}

    dev, pay, other = api("dev@example.com"), api("pay@example.com"), api("other@example.com")
    assert identifiers(dev.get("/v1/blueprints/Service/entities")) == ["portal"]
    assert identifiers(pay.get("/v1/blueprints/Service/entities")) == ["checkout"]
    assert identifiers(other.get("/v1/blueprints/Service/entities")) == []
    assert identifiers(admin_api.get("/v1/blueprints/Service/entities")) == ["checkout", "orphan", "portal"]
    assert dev.get("/v1/blueprints/Service/entities-count").json()["count"] == 1
    assert other.get("/v1/blueprints/Service/entities-count").json()["count"] == 0
    assert dev.get("/v1/blueprints/Service/entities/portal").status_code == 200
    for unseen in ("checkout", "orphan"):
        response = dev.get(f"/v1/blueprints/Service/entities/{unseen}")
        assert response.status_code == 404 and response.json()["error"] == "not_found"

    updated = dev.patch("/v1/blueprints/Service/entities/portal", {"properties": {"tier": "2"}}, format="json")
    assert updated.status_code == 200, updated.json()
    assert updated.json()["entity"]["properties"]["tier"] == "2"
    hidden = dev.patch("/v1/blueprints/Service/entities/checkout", {"properties": {"tier": "2"}}, format="json")
    assert hidden.status_code == 404
    assert Entity.objects.get(identifier="checkout").properties["tier"] == "1"
    # ownedByTeam grants nothing to delete
    assert dev.delete("/v1/blueprints/Service/entities/portal").status_code == 403


def test_owned_by_team_update_with_read_for_everyone(admin_api, owned_services):
    assert patch_permissions(admin_api, {"entities": {"update": {"ownedByTeam": True}}}).status_code == 200
    dev = api("dev@example.com")
    assert identifiers(dev.get("/v1/blueprints/Service/entities")) == ["checkout", "orphan", "portal"]
    assert dev.patch("/v1/blueprints/Service/entities/portal", {"properties": {"tier": "3"}}, format="json").status_code == 200
    refused = dev.patch("/v1/blueprints/Service/entities/checkout", {"properties": {"tier": "3"}}, format="json")
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert Entity.objects.get(identifier="checkout").properties["tier"] == "1"


def test_owned_by_team_register_only_for_own_teams(admin_api, owned_services):
    assert patch_permissions(admin_api, {"entities": {"register": {"ownedByTeam": True}}}).status_code == 200
    dev = api("dev@example.com")
    assert post_entity(dev, "mine", teams=["platform"], language="Go").status_code == 201
    assert post_entity(dev, "theirs", teams=["payments"], language="Go").status_code == 403
    assert post_entity(dev, "nobodys", language="Go").status_code == 403
    assert not Entity.objects.filter(identifier__in=["theirs", "nobodys"]).exists()


def test_update_properties_grant_covers_only_that_property(admin_api, owned_services):
    response = patch_permissions(admin_api, {"entities": {"updateProperties": {"tier": {"roles": ["Member"]}}}})
    assert response.status_code == 200, response.json()
    granted = response.json()["permissions"]["entities"]["updateProperties"]
    assert granted["tier"] == {**NO_GRANT, "roles": ADMIN_ROLES + ["Member"]}
    assert granted["language"] == NO_GRANT

    member = api("other@example.com")
    ok = member.patch("/v1/blueprints/Service/entities/orphan", {"properties": {"tier": "2"}}, format="json")
    assert ok.status_code == 200, ok.json()
    assert Entity.objects.get(identifier="orphan").properties == {"language": "Go", "tier": "2"}
    for change, named in (({"properties": {"language": "Python"}}, "properties.language"),
                          ({"properties": {"tier": "3", "replicas": 2}}, "properties.replicas"),
                          ({"title": "Renamed"}, "title"),
                          ({"relations": {"domain": None}, "team": ["platform"]}, "team")):
        refused = member.patch("/v1/blueprints/Service/entities/orphan", change, format="json")
        assert refused.status_code == 403, (change, refused.json())
        assert refused.json()["error"] == "forbidden" and named in refused.json()["message"], refused.json()
    assert Entity.objects.get(identifier="orphan").properties == {"language": "Go", "tier": "2"}
    assert Entity.objects.get(identifier="orphan").title == "orphan"
    # the per-property grant does not let them create
    assert post_entity(member, "new", tier="1").status_code == 403


def test_update_relations_grant(admin_api, owned_services):
    EntityFactory(blueprint="Domain", identifier="shop")
    assert patch_permissions(admin_api, {"entities": {"updateRelations": {"domain": {"teams": ["platform"]}}}}).status_code == 200
    dev, pay = api("dev@example.com"), api("pay@example.com")
    changed = dev.patch("/v1/blueprints/Service/entities/orphan", {"relations": {"domain": "shop"}}, format="json")
    assert changed.status_code == 200, changed.json()
    assert changed.json()["entity"]["relations"]["domain"] == "shop"
    refused = pay.patch("/v1/blueprints/Service/entities/orphan", {"relations": {"domain": None}}, format="json")
    assert refused.status_code == 403 and "relations.domain" in refused.json()["message"]


def test_a_moderator_can_patch_permissions_of_their_blueprint_only(owned_services):
    user = get_user_model().objects.get(email="dev@example.com")
    user_update(actor=Actor.system(), user=user, data={"roles": ["Service-moderator"]})
    dev = api("dev@example.com")
    assert patch_permissions(dev, {"entities": {"register": {"roles": ["Member"]}}}).status_code == 200
    assert patch_permissions(dev, {"entities": {"register": {"roles": ["Member"]}}}, bp="Domain").status_code == 403
    assert post_entity(api("other@example.com"), "new", language="Go").status_code == 201


@pytest.mark.parametrize(
    "body, message_start",
    [
        ({"entities": {"write": {"roles": ["Member"]}}}, "entities.write: unknown permission"),
        ({"entities": {"register": {"users": ["ghost@example.com"]}}},
         "entities.register.users: user 'ghost@example.com' does not exist"),
        ({"entities": {"update": {"teams": ["platform", "ghosts"]}}}, "entities.update.teams: team 'ghosts' does not exist"),
        ({"entities": {"read": {"roles": ["Owner"]}}}, "entities.read.roles: unknown role 'Owner'"),
        ({"entities": {"read": {"ownedByTeam": "yes"}}}, "entities.read.ownedByTeam: must be true or false"),
        ({"entities": {"read": {"groups": []}}}, "entities.read: unknown keys"),
        ({"entities": {"read": ["Member"]}}, "entities.read: must be an object"),
        ({"entities": {"updateProperties": {"colour": {"roles": ["Member"]}}}},
         "entities.updateProperties.colour: not defined on blueprint 'Service'"),
        ({"entities": {"updateRelations": {"owner": {"roles": ["Member"]}}}},
         "entities.updateRelations.owner: not defined on blueprint 'Service'"),
        ({"entities": {"updateProperties": {"tier": {"users": ["ghost@example.com"]}}}},
         "entities.updateProperties.tier.users: user 'ghost@example.com' does not exist"),
        ({"entities": []}, "entities: must be an object"),
        ({"entities": {"updateProperties": {"tier": {"ownedByTeam": True}}}},
         "entities.updateProperties.tier.ownedByTeam: is only supported on read, register, update and unregister"),
    ],
)
def test_bad_permission_patches_are_422_naming_the_path_and_change_nothing(admin_api, owned_services, body, message_start):
    before = admin_api.get("/v1/blueprints/Service/permissions").json()
    # a valid change ahead of the bad one in the same request must not be half-written
    body = {"entities": {"unregister": {"roles": ["Member"]}, **body["entities"]}} if isinstance(body["entities"], dict) else body
    response = patch_permissions(admin_api, body)
    assert response.status_code == 422, response.json()
    assert response.json()["error"] == "invalid_request"
    assert response.json()["message"].startswith(message_start), response.json()["message"]
    assert admin_api.get("/v1/blueprints/Service/permissions").json() == before
    assert not AuditEvent.objects.filter(verb="catalog.blueprint.permissions_updated").exists()


def test_unknown_blueprint_permissions_are_404(admin_api, owned_services):
    for response in (admin_api.get("/v1/blueprints/Nope/permissions"),
                     patch_permissions(admin_api, {"entities": {}}, bp="Nope")):
        assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_repeated_users_and_teams_in_a_grant_are_stored_once(admin_api, owned_services):
    body = {"entities": {"register": {"users": ["other@example.com", "other@example.com"], "teams": ["platform", "platform"]}}}
    response = patch_permissions(admin_api, body)
    assert response.status_code == 200, response.json()
    assert response.json()["permissions"]["entities"]["register"] == {
        **NO_GRANT, "users": ["other@example.com"], "teams": ["platform"]}


def test_unregister_refusal_comes_before_dependents_are_named(admin_api, owned_services):
    """Without unregister, deleting an entity others depend on is 403, and names none of the dependents."""
    EntityFactory(blueprint="Domain", identifier="shop")
    entity_write_one(actor=Actor.system(), blueprint=blueprint("Service"), mode="patch", identifier="orphan",
                     data={"relations": {"domain": "shop"}})
    response = api("other@example.com").delete("/v1/blueprints/Domain/entities/shop")
    assert response.status_code == 403, response.json()
    assert response.json()["error"] == "forbidden" and "orphan" not in response.json()["message"]
    assert "dependents" not in response.json()
    # Who may delete does; the optional relation to it is cleared (only a required one would block).
    assert admin_api.delete("/v1/blueprints/Domain/entities/shop").status_code == 200
    assert admin_api.get("/v1/blueprints/Service/entities/orphan").json()["entity"]["relations"]["domain"] is None


def test_the_answer_to_a_write_is_the_entity_written_even_when_the_write_hides_it(admin_api, owned_services):
    """The answer is read in one statement (catalog/selectors/search_pages.py `written`): an owned-by-team writer who
    hands its entity to another team is answered with it, though it may no longer read it."""
    assert patch_permissions(admin_api, {"entities": {"read": {"roles": [], "ownedByTeam": True},
                                                      "update": {"ownedByTeam": True}}}).status_code == 200
    dev = api("dev@example.com")
    handed = dev.patch("/v1/blueprints/Service/entities/portal", {"team": ["payments"]}, format="json")
    assert handed.status_code == 200, handed.json()
    assert handed.json()["entity"]["identifier"] == "portal" and handed.json()["entity"]["team"] == ["payments"]
    assert dev.get("/v1/blueprints/Service/entities/portal").status_code == 404
    assert handed.json()["entity"] == admin_api.get("/v1/blueprints/Service/entities/portal").json()["entity"]
