from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from catalog import choices
from catalog.access import can_moderate, is_admin
from catalog.models import Blueprint, Team
from catalog.services.users import user_ensure, user_update
from portal.actor import Actor
from portal.errors import ValidationFailed
from tests.factories import BlueprintFactory, TeamFactory, UserFactory
from tests.support.api import api_for

pytestmark = pytest.mark.django_db

User = get_user_model()


def blueprint(identifier):
    return BlueprintFactory(identifier=identifier, title=identifier,
                            schema={"properties": {"tier": {"type": "string"}}})


def user_events(verb="catalog.user.updated"):
    return list(AuditEvent.objects.filter(verb=verb, resource_type="user"))


def fresh(user):
    """A new instance: is_admin caches on the user object."""
    return User.objects.get(pk=user.pk)


def names(items):
    return [item["name"] for item in items]


def test_list_and_get_render_roles_teams_and_status(member_api):
    UserFactory(email="boss@example.com", admin=True, teams=["platform"])
    gone = UserFactory(email="gone@example.com")
    gone.is_active = False
    gone.first_name, gone.last_name = "Gone", "Away"
    gone.save()
    blueprint("Service")
    user_update(actor=Actor.system(), user=User.objects.get(email="dev@example.com"),
                data={"roles": ["Service-moderator"], "teams": ["platform"]})
    UserFactory(username="no-email", email="")  # not addressable by email: not listed

    response = member_api.get("/v1/users")
    assert response.status_code == 200, response.json()
    users = response.json()["users"]
    assert [u["email"] for u in users] == ["boss@example.com", "dev@example.com", "gone@example.com"]
    boss, dev, gone_json = users
    assert names(boss["roles"]) == ["Admin", "Member"] and names(boss["teams"]) == ["platform"]
    assert names(dev["roles"]) == ["Member", "Service-moderator"] and dev["teams"] == [{"name": "platform"}]
    assert gone_json == {"email": "gone@example.com", "firstName": "Gone", "lastName": "Away", "status": "DISABLED",
                         "roles": [{"name": "Member"}], "teams": [], "createdAt": gone_json["createdAt"]}
    assert gone_json["createdAt"].endswith("Z")
    assert boss["status"] == "ACTIVE"

    got = member_api.get("/v1/users/" + quote("dev@example.com"))
    assert got.status_code == 200 and got.json() == {"ok": True, "user": dev}


def test_unknown_user_is_404(member_api, admin_api):
    for response in (member_api.get("/v1/users/ghost@example.com"),
                     admin_api.patch("/v1/users/ghost@example.com", {"roles": []}, format="json")):
        assert response.status_code == 404
        assert response.json() == {"ok": False, "error": "not_found", "message": "User 'ghost@example.com' was not found."}


def test_granting_admin_creates_the_admins_team_and_makes_the_user_an_admin(admin_api, member_user):
    member = api_for(member_user)
    new_bp = {"identifier": "Service", "title": "Service", "schema": {"properties": {}}}
    assert member.post("/v1/blueprints", new_bp, format="json").status_code == 403

    response = admin_api.patch("/v1/users/dev@example.com", {"roles": ["Admin"]}, format="json")
    assert response.status_code == 200, response.json()
    assert names(response.json()["user"]["roles"]) == ["Admin", "Member"]
    assert names(response.json()["user"]["teams"]) == ["Admins"]
    assert Team.objects.get(name=choices.ADMINS_TEAM).group.user_set.get() == member_user
    assert is_admin(fresh(member_user))
    (created,) = AuditEvent.objects.filter(verb="catalog.team.created", identifier="Admins")
    assert created.actor == "admin@example.com"
    (event,) = user_events()
    assert event.identifier == "dev@example.com" and event.origin == "API" and event.actor == "admin@example.com"
    assert event.diff == {"before": {"roles": ["Member"], "teams": []},
                          "after": {"roles": ["Admin", "Member"], "teams": ["Admins"]}}
    assert member.post("/v1/blueprints", new_bp, format="json").status_code == 201

    # Revoking: out of the Admins team (which stays), no longer an admin.
    response = admin_api.patch("/v1/users/dev@example.com", {"roles": ["Member"]}, format="json")
    assert response.status_code == 200 and names(response.json()["user"]["roles"]) == ["Member"]
    assert not is_admin(fresh(member_user))
    assert Team.objects.filter(name="Admins").exists()
    assert len(user_events()) == 2 and len(AuditEvent.objects.filter(verb="catalog.team.created")) == 1
    other = {"identifier": "Other", "title": "Other", "schema": {"properties": {}}}
    assert member.post("/v1/blueprints", other, format="json").status_code == 403


def test_granting_admin_uses_an_existing_admins_team(admin_api, member_user):
    UserFactory(email="boss@example.com", teams=["Admins"])
    created_before = AuditEvent.objects.filter(verb="catalog.team.created").count()
    assert admin_api.patch("/v1/users/dev@example.com", {"roles": ["Admin", "Member"]}, format="json").status_code == 200
    assert sorted(Team.objects.get(name="Admins").group.user_set.values_list("email", flat=True)) == [
        "boss@example.com", "dev@example.com"]
    assert AuditEvent.objects.filter(verb="catalog.team.created").count() == created_before


def test_moderator_role_grants_that_blueprint_only(admin_api, member_user):
    blueprint("Service")
    blueprint("Other")
    member = api_for(member_user)
    assert member.patch("/v1/blueprints/Service", {"title": "S"}, format="json").status_code == 403

    response = admin_api.patch("/v1/users/dev@example.com", {"roles": ["Member", "Service-moderator"]}, format="json")
    assert response.status_code == 200, response.json()
    assert names(response.json()["user"]["roles"]) == ["Member", "Service-moderator"]
    user = fresh(member_user)
    assert can_moderate(user, Blueprint.objects.get(identifier="Service"))
    assert not can_moderate(user, Blueprint.objects.get(identifier="Other"))
    assert not is_admin(user)
    (event,) = user_events()
    assert event.diff == {"before": {"roles": ["Member"], "teams": []},
                          "after": {"roles": ["Member", "Service-moderator"], "teams": []}}

    assert member.patch("/v1/blueprints/Service", {"title": "Services"}, format="json").status_code == 200
    assert Blueprint.objects.get(identifier="Service").title == "Services"
    grant = {"entities": {"register": {"roles": ["Member"]}}}
    assert member.patch("/v1/blueprints/Service/permissions", grant, format="json").status_code == 200
    refused = [member.patch("/v1/blueprints/Other", {"title": "O"}, format="json"),
               member.patch("/v1/blueprints/Other/permissions", grant, format="json"),
               member.delete("/v1/blueprints/Service")]  # deleting blueprints stays with admins
    assert [r.status_code for r in refused] == [403, 403, 403]
    assert Blueprint.objects.get(identifier="Other").title == "Other"

    # The role set is replaced: moving the moderation to Other revokes Service.
    response = admin_api.patch("/v1/users/dev@example.com", {"roles": ["Other-moderator"]}, format="json")
    assert names(response.json()["user"]["roles"]) == ["Member", "Other-moderator"]
    assert member.patch("/v1/blueprints/Service", {"title": "S"}, format="json").status_code == 403
    assert member.patch("/v1/blueprints/Other", {"title": "O"}, format="json").status_code == 200


def test_moderator_role_of_a_blueprint_with_dashes(admin_api, member_user):
    blueprint("k8s-cluster")
    response = admin_api.patch("/v1/users/dev@example.com", {"roles": ["k8s-cluster-moderator"]}, format="json")
    assert response.status_code == 200, response.json()
    assert can_moderate(fresh(member_user), Blueprint.objects.get(identifier="k8s-cluster"))


def test_teams_replace_membership(admin_api, member_user):
    TeamFactory(name="platform", users=["dev@example.com"])
    TeamFactory(name="payments")
    TeamFactory(name="search")
    response = admin_api.patch("/v1/users/dev@example.com", {"teams": ["search", "payments"]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["user"]["teams"] == [{"name": "payments"}, {"name": "search"}]
    assert sorted(Team.objects.filter(group__user=member_user).values_list("name", flat=True)) == ["payments", "search"]
    (event,) = user_events()
    assert event.diff == {"before": {"roles": ["Member"], "teams": ["platform"]},
                          "after": {"roles": ["Member"], "teams": ["payments", "search"]}}


def test_a_get_can_be_sent_back_unchanged(admin_api, member_user):
    blueprint("Service")
    UserFactory(email="x@example.com", teams=["platform"])
    user_update(actor=Actor.system(), user=member_user, data={"roles": ["Service-moderator"], "teams": ["platform"]})
    before_events = AuditEvent.objects.count()
    shown = admin_api.get("/v1/users/dev@example.com").json()["user"]
    response = admin_api.patch("/v1/users/dev@example.com", {"roles": shown["roles"], "teams": shown["teams"]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["user"] == shown
    assert AuditEvent.objects.count() == before_events  # nothing changed, nothing to audit


def test_members_cannot_change_users(member_api, admin_user):
    response = member_api.patch("/v1/users/dev@example.com", {"roles": ["Admin"]}, format="json")
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    response = member_api.patch("/v1/users/admin@example.com", {"roles": ["Member"]}, format="json")
    assert response.status_code == 403
    assert not Team.objects.exists() and not user_events()
    assert not is_admin(User.objects.get(email="dev@example.com"))


@pytest.mark.parametrize(
    "body, message",
    [
        ({"roles": ["Member", "Nope-moderator"]}, "roles[1]: blueprint 'Nope' does not exist"),
        ({"roles": ["Admin", "Owner"]}, "roles[1]: unknown role 'Owner' (Admin, Member or <blueprint>-moderator)"),
        ({"roles": ["-moderator"]}, "roles[0]: unknown role '-moderator' (Admin, Member or <blueprint>-moderator)"),
        ({"roles": "Admin"}, "roles: must be a list of role names"),
        ({"roles": [3]}, "roles[0]: must be a role name"),
        ({"teams": ["platform", "ghosts"]}, "teams[1]: team 'ghosts' does not exist"),
        ({"teams": [{"id": 1}]}, "teams[0]: must be a team name"),
        ({"roles": ["Member"], "teams": ["Admins"]}, "teams[0]: membership of 'Admins' is the Admin role, which roles omits"),
        ({"email": "new@example.com"}, "email: is not a user field that can be changed (roles, teams)"),
    ],
)
def test_bad_patches_are_422_naming_the_field_and_change_nothing(admin_api, member_user, body, message):
    blueprint("Service")
    TeamFactory(name="platform")
    TeamFactory(name="Admins")
    user_update(actor=Actor.system(), user=member_user, data={"roles": ["Service-moderator"]})
    events = AuditEvent.objects.count()
    response = admin_api.patch("/v1/users/dev@example.com", body, format="json")
    assert response.status_code == 422, response.json()
    assert response.json() == {"ok": False, "error": "invalid_request", "message": message}
    shown = admin_api.get("/v1/users/dev@example.com").json()["user"]
    assert names(shown["roles"]) == ["Member", "Service-moderator"] and shown["teams"] == []
    assert AuditEvent.objects.count() == events


def test_a_superusers_admin_role_cannot_be_removed(admin_api, admin_user):
    response = admin_api.patch("/v1/users/admin@example.com", {"roles": ["Member"]}, format="json")
    assert response.status_code == 422
    assert response.json()["message"].startswith("roles: admin@example.com is a superuser")
    assert is_admin(fresh(admin_user)) and not user_events()


def _list_queries(api):
    with CaptureQueriesContext(connection) as ctx:
        response = api.get("/v1/users")
    assert response.status_code == 200
    return len(ctx.captured_queries), response.json()["users"]


def test_user_list_query_count_does_not_grow(admin_user, admin_api):
    for identifier in ("A", "B", "C"):
        blueprint(identifier)
    TeamFactory(name="platform")
    TeamFactory(name="search")
    admin_api.get("/v1/users")  # warm per-process caches (content types)
    one, users = _list_queries(admin_api)
    assert len(users) == 1
    for i in range(19):
        user = UserFactory(email=f"u{i:02d}@example.com", teams=["platform", "search"][: i % 3])
        user_update(actor=Actor.system(), user=user, data={"roles": [f"{bp}-moderator" for bp in "ABC"[: i % 4]]})
    many, users = _list_queries(admin_api)
    assert len(users) == 20
    assert names(users[4]["roles"]) == ["Member", "A-moderator", "B-moderator", "C-moderator"]  # u03
    assert names(users[3]["teams"]) == ["platform", "search"]  # u02
    assert many == one


# user_ensure: what the create_api_client and demo commands call.

def test_user_ensure_creates_a_user_once(system):
    user = user_ensure(actor=system, email="new@example.com")
    assert (user.username, user.email, user.is_active) == ("new@example.com", "new@example.com", True)
    assert not user.has_usable_password()
    (event,) = user_events("catalog.user.created")
    assert event.identifier == "new@example.com" and event.actor == "system"
    assert event.diff == {"before": None, "after": {"email": "new@example.com", "roles": ["Member"], "teams": []}}
    again = user_ensure(actor=system, email="NEW@example.com")
    assert again.pk == user.pk and User.objects.count() == 1
    assert len(user_events("catalog.user.created")) == 1 and not user_events()


def test_user_ensure_adds_admin_and_teams(system):
    TeamFactory(name="platform")
    user = user_ensure(actor=system, email="ops@example.com", admin=True, team_names=["platform", "search"])
    assert is_admin(user)
    assert sorted(Team.objects.filter(group__user=user).values_list("name", flat=True)) == ["Admins", "platform", "search"]
    (event,) = user_events("catalog.user.created")
    assert event.diff["after"] == {"email": "ops@example.com", "roles": ["Admin", "Member"],
                                   "teams": ["Admins", "platform", "search"]}
    assert sorted(AuditEvent.objects.filter(verb="catalog.team.created").values_list("identifier", flat=True)) == [
        "Admins", "platform", "search"]


def test_user_ensure_adds_to_an_existing_user_without_removing(system, member_user):
    TeamFactory(name="platform", users=["dev@example.com"])
    user = user_ensure(actor=system, email="dev@example.com", admin=True)
    assert user.pk == member_user.pk
    (event,) = user_events()
    assert event.diff == {"before": {"roles": ["Member"], "teams": ["platform"]},
                          "after": {"roles": ["Admin", "Member"], "teams": ["Admins", "platform"]}}
    assert not user_events("catalog.user.created")


def test_user_ensure_refuses_a_bad_email(system):
    with pytest.raises(ValidationFailed, match="^email: 'not-an-email' is not a valid email address$"):
        user_ensure(actor=system, email="not-an-email")
    assert not User.objects.exists() and not AuditEvent.objects.exists()
