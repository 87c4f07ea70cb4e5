from urllib.parse import quote

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from catalog.models import Team
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def team_events(verb):
    return list(AuditEvent.objects.filter(verb=verb, resource_type="team"))


def test_admin_creates_reads_and_lists_a_team(admin_api):
    UserFactory(email="ann@example.com")
    UserFactory(email="bob@example.com")
    response = admin_api.post("/v1/teams", {"name": "platform", "description": "Platform team",
                                            "users": ["bob@example.com", "ann@example.com"]}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["ok"] is True
    team = body["team"]
    assert {k: team[k] for k in ("name", "description", "users")} == {
        "name": "platform", "description": "Platform team", "users": ["ann@example.com", "bob@example.com"]}
    assert team["createdAt"].endswith("Z") and team["updatedAt"].endswith("Z")
    assert set(Team.objects.get(name="platform").group.user_set.values_list("email", flat=True)) == {
        "ann@example.com", "bob@example.com"}
    (event,) = team_events("catalog.team.created")
    assert event.identifier == "platform" and event.origin == "API" and event.actor == "admin@example.com"
    assert event.diff == {"before": None, "after": {"name": "platform", "description": "Platform team",
                                                    "users": ["ann@example.com", "bob@example.com"]}}

    got = admin_api.get("/v1/teams/platform")
    assert got.status_code == 200 and got.json() == {"ok": True, "team": team}
    listed = admin_api.get("/v1/teams")
    assert listed.status_code == 200 and listed.json() == {"ok": True, "teams": [team]}


def test_members_may_read_teams_but_not_change_them(member_api):
    TeamFactory(name="platform", users=["dev@example.com"])
    assert member_api.get("/v1/teams").json()["teams"][0]["users"] == ["dev@example.com"]
    assert member_api.get("/v1/teams/platform").status_code == 200
    before = AuditEvent.objects.count()
    refused = [
        member_api.post("/v1/teams", {"name": "mine"}, format="json"),
        member_api.patch("/v1/teams/platform", {"description": "x"}, format="json"),
        member_api.put("/v1/teams/platform", {"description": "x"}, format="json"),
        member_api.delete("/v1/teams/platform"),
    ]
    for response in refused:
        assert response.status_code == 403, response.json()
        assert response.json()["ok"] is False and response.json()["error"] == "forbidden"
    assert list(Team.objects.values_list("name", "description")) == [("platform", "")]
    assert AuditEvent.objects.count() == before


def test_anonymous_gets_401(anon_api):
    response = anon_api.get("/v1/teams")
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"


def test_patch_changes_only_what_is_given_and_audits_the_diff(admin_api):
    UserFactory(email="ann@example.com")
    UserFactory(email="bob@example.com")
    TeamFactory(name="platform", description="old", users=["ann@example.com"])
    response = admin_api.patch("/v1/teams/platform", {"users": ["bob@example.com"]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["team"]["users"] == ["bob@example.com"]
    assert response.json()["team"]["description"] == "old"
    (event,) = team_events("catalog.team.updated")
    assert event.diff == {
        "before": {"name": "platform", "description": "old", "users": ["ann@example.com"]},
        "after": {"name": "platform", "description": "old", "users": ["bob@example.com"]},
    }


def test_patch_renames_the_team_and_its_group(admin_api):
    TeamFactory(name="platform")
    response = admin_api.patch("/v1/teams/platform", {"name": "infra"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["team"]["name"] == "infra"
    team = Team.objects.get()
    assert team.name == team.group.name == "infra"
    assert admin_api.get("/v1/teams/platform").status_code == 404
    (event,) = team_events("catalog.team.updated")
    assert (event.diff["before"]["name"], event.diff["after"]["name"]) == ("platform", "infra")


def test_put_replaces_description_and_members_and_keeps_the_path_name(admin_api):
    UserFactory(email="ann@example.com")
    TeamFactory(name="platform", description="old", users=["ann@example.com"])
    response = admin_api.put("/v1/teams/platform", {"description": "new"}, format="json")
    assert response.status_code == 200, response.json()
    team = response.json()["team"]
    assert (team["name"], team["description"], team["users"]) == ("platform", "new", [])
    (event,) = team_events("catalog.team.updated")
    assert event.diff["before"]["users"] == ["ann@example.com"] and event.diff["after"]["users"] == []


def test_delete_removes_team_and_group(admin_api):
    UserFactory(email="ann@example.com")
    TeamFactory(name="platform", users=["ann@example.com"])
    response = admin_api.delete("/v1/teams/platform")
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert not Team.objects.exists() and not Group.objects.filter(name="platform").exists()
    (event,) = team_events("catalog.team.deleted")
    assert event.diff == {"before": {"name": "platform", "description": "", "users": ["ann@example.com"]}, "after": None}


def test_team_names_in_paths_are_url_encoded(admin_api):
    name = "Platform / Infra & Ops?"
    assert admin_api.post("/v1/teams", {"name": name}, format="json").status_code == 201
    path = "/v1/teams/" + quote(name, safe="")
    assert admin_api.get(path).json()["team"]["name"] == name
    assert admin_api.patch(path, {"description": "d"}, format="json").json()["team"]["description"] == "d"
    assert admin_api.delete(path).status_code == 200
    assert not Team.objects.exists()


@pytest.mark.parametrize("method", ["get", "patch", "put", "delete"])
def test_unknown_team_is_404_not_found(admin_api, method):
    response = getattr(admin_api, method)("/v1/teams/nope", {}, format="json")
    assert response.status_code == 404
    assert response.json() == {"ok": False, "error": "not_found", "message": "Team 'nope' was not found."}


def test_duplicate_name_is_409(admin_api):
    TeamFactory(name="platform")
    response = admin_api.post("/v1/teams", {"name": "platform"}, format="json")
    assert response.status_code == 409 and response.json()["error"] == "conflict"
    TeamFactory(name="infra")
    response = admin_api.patch("/v1/teams/infra", {"name": "platform"}, format="json")
    assert response.status_code == 409
    assert sorted(Team.objects.values_list("name", flat=True)) == ["infra", "platform"]


@pytest.mark.parametrize(
    "body, path",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "t", "users": ["ghost@example.com"]}, "users"),
        ({"name": "t", "users": "ann@example.com"}, "users"),
        ({"name": "t", "description": 3}, "description"),
        ({"name": "t", "colour": "red"}, "colour"),
    ],
)
def test_bad_team_bodies_are_422_naming_the_field(admin_api, body, path):
    response = admin_api.post("/v1/teams", body, format="json")
    assert response.status_code == 422, response.json()
    assert response.json()["error"] == "invalid_request"
    assert response.json()["message"].startswith(f"{path}:"), response.json()["message"]
    assert not Team.objects.exists() and not team_events("catalog.team.created")


def test_patch_with_unknown_member_writes_nothing(admin_api):
    UserFactory(email="ann@example.com")
    TeamFactory(name="platform", users=["ann@example.com"])
    response = admin_api.patch("/v1/teams/platform", {"description": "d", "users": ["ghost@example.com"]}, format="json")
    assert response.status_code == 422
    assert response.json()["message"] == "users: user 'ghost@example.com' does not exist"
    team = Team.objects.get()
    assert team.description == "" and list(team.group.user_set.values_list("email", flat=True)) == ["ann@example.com"]
    assert not team_events("catalog.team.updated")


def _list_queries(api):
    with CaptureQueriesContext(connection) as ctx:
        response = api.get("/v1/teams")
    assert response.status_code == 200
    return len(ctx.captured_queries), response.json()["teams"]


def test_team_list_query_count_does_not_grow(member_api):
    for i in range(3):
        UserFactory(email=f"u{i}@example.com")
    TeamFactory(name="t00", users=["u0@example.com"])
    member_api.get("/v1/teams")  # warm per-process caches (content types)
    one, teams = _list_queries(member_api)
    assert len(teams) == 1
    for i in range(1, 20):
        TeamFactory(name=f"t{i:02d}", users=[f"u{j}@example.com" for j in range(i % 3 + 1)])
    many, teams = _list_queries(member_api)
    assert len(teams) == 20 and teams[5]["users"] == ["u0@example.com", "u1@example.com", "u2@example.com"]
    assert many == one
