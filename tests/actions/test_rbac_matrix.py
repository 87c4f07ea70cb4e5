"""RBAC over roles × run endpoints.

Roles: admin; a member granted execute+approve by name; a member granted through their team;
a member with no grant; anonymous. The runs under test were requested by pay@ (granted), on an
entity every member may read — so every signed-in user sees them (runs_visible_to), but only the
requester, admins and approvers may act on them.
"""
import pytest
from guardian.models import GroupObjectPermission
from rest_framework.test import APIClient

from actions.services.runs import run_request
from actions.tasks import run_dispatch_task
from catalog.models import Blueprint
from tests.factories import ActionFactory, UserFactory
from tests.support.api import api_for
from tests.support.runs import actor_of, catalog_setup, grant

pytestmark = pytest.mark.django_db

ROLES = ("admin", "granted", "team", "ungranted", "anonymous")
EXPECTED = {
    #             admin granted team ungranted anonymous
    "request": (202, 202, 202, 404, 401),
    "list": (200, 200, 200, 200, 401),
    "get": (200, 200, 200, 200, 401),
    "patch": (200, 403, 403, 403, 401),
    "log": (201, 403, 403, 403, 401),
    "approve": (200, 200, 200, 403, 401),
}


@pytest.fixture
def rbac_world(db, monkeypatch):
    monkeypatch.setattr(run_dispatch_task, "delay", lambda run_id: None)
    users = catalog_setup()
    users["granted"] = UserFactory(email="granted@example.com")
    users["team"] = users["dev"]  # platform
    users["ungranted"] = users["other"]
    action = ActionFactory()
    gated = ActionFactory(identifier="gated", required_approval=True)
    for each in (action, gated):
        grant("execute", each, users=[users["granted"], users["pay"]], teams=["platform"])
        grant("approve", each, users=[users["granted"]], teams=["platform"])
    running = run_request(actor=actor_of(users["pay"]), action=action, properties={}, entity_identifier="checkout")
    waiting = run_request(actor=actor_of(users["pay"]), action=gated, properties={}, entity_identifier="checkout")
    return users, running, waiting


def client(users, role):
    return APIClient() if role == "anonymous" else api_for(users[role])


CALLS = {
    "request": lambda api, running, waiting: api.post("/v1/actions/deploy/runs", {"entity": "portal"}, format="json"),
    "list": lambda api, running, waiting: api.get("/v1/actions/runs"),
    "get": lambda api, running, waiting: api.get(f"/v1/actions/runs/{running.id}"),
    "patch": lambda api, running, waiting: api.patch(f"/v1/actions/runs/{running.id}", {"statusLabel": "x"}, format="json"),
    "log": lambda api, running, waiting: api.post(f"/v1/actions/runs/{running.id}/logs", {"message": "x"}, format="json"),
    "approve": lambda api, running, waiting: api.patch(f"/v1/actions/runs/{waiting.id}/approval", {"status": "APPROVE"},
                                                       format="json"),
}


@pytest.mark.parametrize("endpoint", list(EXPECTED))
@pytest.mark.parametrize("role", ROLES)
def test_matrix(rbac_world, role, endpoint):
    users, running, waiting = rbac_world
    response = CALLS[endpoint](client(users, role), running, waiting)
    expected = EXPECTED[endpoint][ROLES.index(role)]
    assert response.status_code == expected, response.content
    body = response.json()
    if expected >= 400:
        assert body["ok"] is False and body["error"] and body["message"]
        return
    assert body["ok"] is True
    if endpoint == "list":
        assert sorted(run["id"] for run in body["runs"]) == sorted([running.id, waiting.id])
    if endpoint == "approve":
        assert body["run"]["status"] == "IN_PROGRESS"


def test_requester_may_patch_and_log(rbac_world):
    users, running, _ = rbac_world
    api = api_for(users["pay"])
    assert api.patch(f"/v1/actions/runs/{running.id}", {"statusLabel": "x"}, format="json").status_code == 200
    assert api.post(f"/v1/actions/runs/{running.id}/logs", {"message": "x"}, format="json").status_code == 201


def test_runs_of_unreadable_entities_are_hidden(rbac_world):
    users, running, waiting = rbac_world
    service = Blueprint.objects.get(identifier="Service")
    GroupObjectPermission.objects.filter(object_pk=str(service.pk), content_type__model="blueprint").delete()
    other = api_for(users["ungranted"])
    assert other.get("/v1/actions/runs").json()["runs"] == []
    assert other.get(f"/v1/actions/runs/{running.id}").status_code == 404
    assert other.patch(f"/v1/actions/runs/{running.id}", {"statusLabel": "x"}, format="json").status_code == 404
    # the approvers still see the runs they may decide, the requester their own
    assert {r["id"] for r in api_for(users["granted"]).get("/v1/actions/runs").json()["runs"]} == {running.id, waiting.id}
    assert {r["id"] for r in api_for(users["pay"]).get("/v1/actions/runs").json()["runs"]} == {running.id, waiting.id}
