"""/v1/actions CRUD, /v1/actions/{id}/permissions, who sees which action, their audit events, and the admin."""
import copy
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from actions.models import Action, Run
from audit import choices as audit_choices
from audit.models import AuditEvent
from tests.factories import EntityFactory, RunFactory, UserFactory
from tests.support.action_definitions import DAY2, DEV_ENV as DEV_ENV_WITH_TTL
from tests.support.api import api_for

pytestmark = pytest.mark.django_db


def action_events(verb):
    return list(AuditEvent.objects.filter(verb=verb).order_by("id"))


# Most tests here are about CRUD, lists and grants: without a TTL, no built-in "Extend TTL" action joins them.
DEV_ENV = {key: value for key, value in DEV_ENV_WITH_TTL.items() if key != "ttl"}


def create(api, data=DEV_ENV):
    response = api.post("/v1/actions", data, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["action"]


def test_crud_round_trip_with_audit(admin_api, blueprints):
    created = create(admin_api)
    assert created["identifier"] == "spin_up_dev_env"
    assert created["requiredApproval"] == {"type": "ANY"}
    assert created["quota"] == {"perUser": {"limit": 3, "period": "day"}, "liveEntitiesPerUser": 2}
    assert (created["approvalTimeout"], created["runTimeout"]) == ("P1D", "PT1H")
    assert created["ttl"] is None and created["createdBy"] == "admin@example.com"
    action = Action.objects.get(identifier="spin_up_dev_env")
    assert (action.trigger_type, action.operation, action.blueprint_identifier) == ("self-service", "CREATE", "Environment")
    assert (action.approval_timeout_seconds, action.run_timeout_seconds) == (86400, 3600)
    [event] = action_events(audit_choices.ACTION_CREATED)
    assert (event.identifier, event.resource_type, event.blueprint) == ("spin_up_dev_env", "action", "Environment")
    assert event.diff == {"before": None, "after": created}

    fetched = admin_api.get("/v1/actions/spin_up_dev_env")
    assert fetched.status_code == 200 and fetched.json() == {"ok": True, "action": created}

    changed = copy.deepcopy(created)  # what GET returned is accepted back by PUT
    changed.update(title="Dev environment", runTimeout="PT2H", requiredApproval=False)
    response = admin_api.put("/v1/actions/spin_up_dev_env", changed, format="json")
    assert response.status_code == 200, response.json()
    updated = response.json()["action"]
    assert (updated["title"], updated["runTimeout"], updated["requiredApproval"]) == ("Dev environment", "PT2H", False)
    [event] = action_events(audit_choices.ACTION_UPDATED)
    assert event.diff["before"]["title"] == "Spin up a developer environment"
    assert event.diff["after"]["title"] == "Dev environment"

    response = admin_api.delete("/v1/actions/spin_up_dev_env")
    assert (response.status_code, response.json()) == (200, {"ok": True})
    assert not Action.objects.exists()
    [event] = action_events(audit_choices.ACTION_DELETED)
    assert event.diff == {"before": updated, "after": None}
    assert admin_api.get("/v1/actions/spin_up_dev_env").json() == {
        "ok": False, "error": "not_found", "message": "Action 'spin_up_dev_env' was not found."}


def test_refusals(admin_api, member_api, blueprints):
    create(admin_api)
    duplicate = admin_api.post("/v1/actions", DEV_ENV, format="json")
    assert duplicate.status_code == 409 and duplicate.json()["error"] == "conflict"

    bad = copy.deepcopy(DEV_ENV) | {"identifier": "other"}
    bad["trigger"]["userInputs"]["properties"]["branch"]["pattern"] = "(a)\\1"
    response = admin_api.post("/v1/actions", bad, format="json")
    assert response.status_code == 422
    assert response.json()["message"].startswith("trigger.userInputs.properties.branch.pattern: is not a valid regular")

    response = admin_api.put("/v1/actions/spin_up_dev_env", {**DEV_ENV, "identifier": "renamed"}, format="json")
    assert (response.status_code, response.json()["message"]) == (422, "identifier: an action's identifier cannot be changed")

    assert member_api.post("/v1/actions", {**DEV_ENV, "identifier": "mine"}, format="json").status_code == 403
    # Not granted: the member cannot even tell the action exists.
    url = "/v1/actions/spin_up_dev_env"
    for response in (member_api.get(url), member_api.put(url, DEV_ENV, format="json"), member_api.delete(url),
                     member_api.get(f"{url}/permissions")):
        assert response.status_code == 404, response.json()
    assert len(action_events(audit_choices.ACTION_CREATED)) == 1
    assert not action_events(audit_choices.ACTION_UPDATED) and not action_events(audit_choices.ACTION_DELETED)


def test_delete_is_refused_while_runs_exist(admin_api, blueprints):
    create(admin_api)
    action = Action.objects.get()
    for i in range(2):
        RunFactory(id=f"r_{i}", action=action, status="SUCCESS")
    response = admin_api.delete("/v1/actions/spin_up_dev_env")
    assert response.status_code == 409
    assert response.json()["message"].startswith("Action 'spin_up_dev_env' has 2 runs;")
    assert Action.objects.filter(pk=action.pk).exists() and not action_events(audit_choices.ACTION_DELETED)


def test_a_blueprint_used_by_an_action_cannot_be_deleted(admin_api, blueprints):
    create(admin_api)
    blueprint = DEV_ENV["trigger"]["blueprintIdentifier"]
    response = admin_api.delete(f"/v1/blueprints/{blueprint}?delete_entities=true")
    assert response.status_code == 409, response.json()
    assert "spin_up_dev_env" in response.json()["message"]
    assert admin_api.delete("/v1/actions/spin_up_dev_env").status_code == 200
    assert admin_api.delete(f"/v1/blueprints/{blueprint}?delete_entities=true").status_code == 200


def test_a_ttl_brings_the_built_in_extend_ttl_action(admin_api, blueprints):
    create(admin_api, DEV_ENV_WITH_TTL)
    extend = admin_api.get("/v1/actions/extend_ttl_Environment")
    assert extend.status_code == 200, extend.json()
    body = extend.json()["action"]
    assert (body["trigger"]["operation"], body["trigger"]["blueprintIdentifier"]) == ("DAY-2", "Environment")
    assert body["invocationMethod"] == {"type": "EXTEND_TTL"}
    member = api_for(UserFactory(email="member@example.com"))
    assert "extend_ttl_Environment" in [a["identifier"] for a in member.get("/v1/actions").json()["actions"]]
    created = AuditEvent.objects.filter(verb=audit_choices.ACTION_CREATED).values_list("identifier", flat=True)
    assert sorted(created) == ["extend_ttl_Environment", "spin_up_dev_env"]
    # Ensured once: saving the CREATE action again leaves the one built-in action.
    admin_api.put("/v1/actions/spin_up_dev_env", {**DEV_ENV_WITH_TTL, "title": "Again"}, format="json")
    assert Action.objects.filter(identifier="extend_ttl_Environment").count() == 1


def test_list_filters(admin_api, blueprints):
    create(admin_api)
    create(admin_api, DAY2)

    def listed(query=""):
        response = admin_api.get(f"/v1/actions{query}")
        assert response.status_code == 200, response.json()
        return [a["identifier"] for a in response.json()["actions"]]

    assert listed() == ["scale", "spin_up_dev_env"]
    assert listed("?blueprint_identifier=Service") == ["scale"]
    assert listed("?operation=CREATE") == ["spin_up_dev_env"]
    assert listed("?operation=DAY-2&blueprint_identifier=Service") == ["scale"]
    assert listed("?trigger_type=automation") == []
    assert listed("?trigger_type=self-service") == ["scale", "spin_up_dev_env"]
    response = admin_api.get("/v1/actions?operation=UPDATE")
    assert response.status_code == 422 and response.json()["message"].startswith("operation: must be one of")


def test_members_see_actions_granted_to_them_their_team_or_the_member_role(admin_api, blueprints):
    create(admin_api)
    create(admin_api, DAY2)
    create(admin_api, {**DAY2, "identifier": "restart", "title": "Restart"})
    dev = api_for(UserFactory(email="dev@example.com", teams=["platform"]))
    other = api_for(UserFactory(email="other@example.com"))

    def listed(api):
        return [a["identifier"] for a in api.get("/v1/actions").json()["actions"]]

    assert listed(dev) == listed(other) == []  # new actions: admins only
    admin_api.patch("/v1/actions/spin_up_dev_env/permissions", {"execute": {"users": ["dev@example.com"]}}, format="json")
    admin_api.patch("/v1/actions/scale/permissions", {"execute": {"teams": ["platform"]}}, format="json")
    assert listed(dev) == ["scale", "spin_up_dev_env"] and listed(other) == []
    admin_api.patch("/v1/actions/restart/permissions", {"execute": {"roles": ["Member"]}}, format="json")
    assert listed(dev) == ["restart", "scale", "spin_up_dev_env"] and listed(other) == ["restart"]
    assert other.get("/v1/actions/restart").status_code == 200
    assert other.get("/v1/actions/scale").status_code == 404
    # Seeing an action is not changing it.
    assert other.put("/v1/actions/restart", {**DAY2, "identifier": "restart"}, format="json").status_code == 403
    assert other.delete("/v1/actions/restart").status_code == 403
    assert other.patch("/v1/actions/restart/permissions", {"execute": {"roles": []}}, format="json").status_code == 403
    assert other.get("/v1/actions/restart/permissions").status_code == 200
    # ownedByTeam: listed for members of any team (whether they may run it on an entity is decided per entity).
    admin_api.patch("/v1/actions/restart/permissions", {"execute": {"roles": [], "ownedByTeam": True}}, format="json")
    assert listed(dev) == ["restart", "scale", "spin_up_dev_env"] and listed(other) == []


def test_unpublished_actions_are_hidden_from_members(admin_api, blueprints):
    create(admin_api, {**DAY2, "identifier": "restart", "title": "Restart"})
    admin_api.patch("/v1/actions/restart/permissions", {"execute": {"roles": ["Member"]}}, format="json")
    member = api_for(UserFactory(email="other@example.com"))
    assert [a["identifier"] for a in member.get("/v1/actions").json()["actions"]] == ["restart"]
    assert admin_api.put("/v1/actions/restart", {**DAY2, "identifier": "restart", "publish": False}, format="json").status_code == 200
    assert member.get("/v1/actions").json()["actions"] == []
    assert member.get("/v1/actions/restart").status_code == 404
    assert [a["identifier"] for a in admin_api.get("/v1/actions").json()["actions"]] == ["restart"]


def test_permissions_round_trip(admin_api, blueprints):
    create(admin_api)
    UserFactory(email="dev@example.com", teams=["platform"])
    UserFactory(email="boss@example.com")
    url = "/v1/actions/spin_up_dev_env/permissions"
    nobody = {"roles": ["Admin"], "users": [], "teams": [], "ownedByTeam": False, "policy": None}
    assert admin_api.get(url).json() == {"ok": True, "permissions": {"execute": nobody, "approve": nobody}}

    body = {"execute": {"roles": ["Member"], "teams": ["platform"], "ownedByTeam": True},
            "approve": {"users": ["boss@example.com"], "policy": ".user.email | endswith(\"@example.com\")"}}
    response = admin_api.patch(url, body, format="json")
    assert response.status_code == 200, response.json()
    expected = {
        "execute": {"roles": ["Admin", "Member"], "users": [], "teams": ["platform"], "ownedByTeam": True, "policy": None},
        "approve": {"roles": ["Admin"], "users": ["boss@example.com"], "teams": [], "ownedByTeam": False,
                    "policy": ".user.email | endswith(\"@example.com\")"},
    }
    assert response.json() == {"ok": True, "permissions": expected}
    assert admin_api.get(url).json()["permissions"] == expected
    [event] = action_events(audit_choices.ACTION_PERMISSIONS_UPDATED)
    assert event.diff == {"before": {"execute": nobody, "approve": nobody}, "after": expected}

    # PATCH: only what is given changes.
    response = admin_api.patch(url, {"approve": {"users": [], "policy": None}}, format="json")
    assert response.json()["permissions"] == {**expected, "approve": nobody}

    for bad, message in [
        ({"execute": {"roles": ["Service-moderator"]}}, "execute.roles: unknown role 'Service-moderator' (Admin or Member)"),
        ({"execute": {"users": ["ghost@example.com"]}}, "execute.users: user 'ghost@example.com' does not exist"),
        ({"approve": {"teams": ["ghosts"]}}, "approve.teams: team 'ghosts' does not exist"),
        ({"approve": {"policy": ".user | ("}}, "approve.policy: does not compile"),
        ({"approve": {"colour": "red"}}, "approve: unknown keys ['colour']"),
        ({"deploy": {}}, "deploy: unknown permission (execute or approve)"),
    ]:
        response = admin_api.patch(url, bad, format="json")
        assert response.status_code == 422 and response.json()["message"].startswith(message), response.json()
    assert len(action_events(audit_choices.ACTION_PERMISSIONS_UPDATED)) == 2


@pytest.mark.parametrize("who", ["admin", "member"])
def test_list_query_count_does_not_grow(admin_api, blueprints, who):
    from actions.services.actions import action_create, action_permissions_update
    from portal.actor import Actor

    member = UserFactory(email="dev@example.com", teams=["platform"])
    api = admin_api if who == "admin" else api_for(member)

    def add(n):
        for i in range(n):
            action = action_create(actor=Actor.system(), data={**DAY2, "identifier": f"a{Action.objects.count()}"})
            action_permissions_update(actor=Actor.system(), action=action, data={"execute": {"teams": ["platform"]}})

    def count():
        with CaptureQueriesContext(connection) as captured:
            response = api.get("/v1/actions")
        assert response.status_code == 200
        return len(captured), len(response.json()["actions"])

    add(1)
    one = count()
    add(19)
    many = count()
    assert (one[1], many[1]) == (1, 20)
    assert one[0] == many[0]


def test_admin_validates_at_the_field_and_saves_through_the_service(client, admin_user, blueprints):
    client.force_login(admin_user)
    url = reverse("admin:actions_action_add")
    form = {"identifier": "spin_up_dev_env", "title": DEV_ENV["title"], "icon": "", "description": "", "publish": "on",
            "trigger": json.dumps(DEV_ENV["trigger"]), "invocation_method": json.dumps(DEV_ENV["invocationMethod"]),
            "required_approval": json.dumps({"type": "ANY"}), "approval_notification": "", "quota": json.dumps(DEV_ENV["quota"]),
            "ttl": json.dumps(DEV_ENV_WITH_TTL["ttl"]), "approval_timeout": "P1D", "run_timeout": ""}
    bad = {**form, "invocation_method": json.dumps({**DEV_ENV["invocationMethod"], "url": "https://x/{{ .inputs | ( }}"})}
    response = client.post(url, bad)
    assert response.status_code == 200  # the form again, with the error on the field
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["invocation_method"] and "does not compile" in errors["invocation_method"][0]
    assert not Action.objects.exists() and not AuditEvent.objects.filter(verb=audit_choices.ACTION_CREATED).exists()

    response = client.post(url, {**form, "ttl": json.dumps({**DEV_ENV_WITH_TTL["ttl"], "property": "branch"})})
    assert list(response.context["adminform"].form.errors) == ["ttl"]

    response = client.post(url, form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    action = Action.objects.get(identifier="spin_up_dev_env")
    assert (action.approval_timeout_seconds, action.run_timeout_seconds, action.required_approval) == (86400, 3600, {"type": "ANY"})
    [event] = AuditEvent.objects.filter(verb=audit_choices.ACTION_CREATED, identifier="spin_up_dev_env")
    assert event.origin == "ADMIN" and event.actor == "admin@example.com"

    RunFactory(id="r_1", action=action, status="SUCCESS")
    response = client.post(reverse("admin:actions_action_delete", args=[action.pk]), {"post": "yes"}, follow=True)
    assert Action.objects.filter(pk=action.pk).exists()
    assert "has 1 run;" in " ".join(str(m) for m in response.context["messages"])


def test_admin_edits_who_may_run_and_approve(client, admin_user, blueprints):
    from actions.services.actions import action_permissions_json

    client.force_login(admin_user)
    form = {"identifier": "spin_up_dev_env", "title": DEV_ENV["title"], "icon": "", "description": "", "publish": "on",
            "trigger": json.dumps(DEV_ENV["trigger"]), "invocation_method": json.dumps(DEV_ENV["invocationMethod"]),
            "required_approval": "false", "approval_notification": "", "quota": "", "ttl": "", "approval_timeout": "",
            "run_timeout": ""}
    url = reverse("admin:actions_action_add")
    response = client.post(url, {**form, "permissions": json.dumps({"execute": {"teams": ["nope"]}})})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["permissions"] and "execute.teams" in errors["permissions"][0]
    assert not Action.objects.exists()

    grants = {"execute": {"roles": ["Member"]}, "approve": {"users": ["admin@example.com"]}}
    response = client.post(url, {**form, "permissions": json.dumps(grants)})
    assert response.status_code == 302, response.context["adminform"].form.errors
    permissions = action_permissions_json(Action.objects.get())
    assert "Member" in permissions["execute"]["roles"] and permissions["approve"]["users"] == ["admin@example.com"]
    [event] = AuditEvent.objects.filter(verb=audit_choices.ACTION_PERMISSIONS_UPDATED)
    assert event.origin == "ADMIN"
    member = api_for(UserFactory(email="member@example.com"))
    assert [a["identifier"] for a in member.get("/v1/actions").json()["actions"]] == ["spin_up_dev_env"]


def test_run_json_shape_and_constant_queries_for_lists(blueprints):
    from actions.serializers import run_json, runs_json
    from actions.services.actions import action_create
    from catalog.models import Entity
    from portal.actor import Actor

    action = action_create(actor=Actor.system(), data=DEV_ENV)
    dev, boss = UserFactory(email="dev@example.com"), UserFactory(email="boss@example.com")
    env = EntityFactory(blueprint="Environment", identifier="env-1", title="Env 1")

    def add_run(i, **fields):
        run = RunFactory(id=f"r_{i}", action=action, blueprint_identifier="Environment", requested_by=dev,
                                 properties={"branch": "main"}, origin="API", required_approval={"type": "ANY"}, **fields)
        run.approvals.create(approver=boss, decision="APPROVE", description="ok")
        return run

    add_run(0, status="SUCCESS", links=["https://ci/1"], result_entity=env, external_run_id="gh-1")
    got = run_json(Run.objects.get(id="r_0"))
    assert {k: got[k] for k in ("id", "action", "blueprint", "entity", "properties", "status", "link", "source",
                                "requiredApproval", "externalRunId", "createdBy", "endedAt", "result")} == {
        "id": "r_0", "action": {"identifier": "spin_up_dev_env", "title": "Spin up a developer environment"},
        "blueprint": {"identifier": "Environment"}, "entity": None, "properties": {"branch": "main"}, "status": "SUCCESS",
        "link": ["https://ci/1"], "source": "API", "requiredApproval": {"type": "ANY"}, "externalRunId": "gh-1",
        "createdBy": "dev@example.com", "endedAt": None, "result": {"identifier": "env-1", "blueprint": "Environment"}}
    assert got["approval"]["status"] == "APPROVED"
    assert got["approval"]["decisions"][0] | {"at": None} == {"userId": "boss@example.com", "state": "APPROVE",
                                                              "description": "ok", "at": None}
    assert got["createdAt"].endswith("Z")

    def queries():
        with CaptureQueriesContext(connection) as captured:
            rendered = runs_json(Run.objects.all())
        return len(captured), len(rendered)

    one = queries()
    for i in range(1, 20):
        add_run(i, status="WAITING_FOR_APPROVAL", entity=Entity.objects.get(identifier="env-1"), entity_identifier="env-1",
                entity_title="Env 1")
    many = queries()
    assert (one[1], many[1]) == (1, 20) and one[0] == many[0]
    waiting = runs_json([Run.objects.get(id="r_5")])[0]
    assert waiting["entity"] == {"identifier": "env-1", "title": "Env 1"} and waiting["approval"]["status"] == "PENDING"
