"""The runs API: status, envelope and body of each route; list filters; query counts."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from actions.models import Run
from audit.models import AuditEvent
from actions.services.runs import run_request
from tests.factories import ActionFactory
from tests.support.api import api_for
from tests.support.runs import actor_of, grant

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_dispatch_skipped")]


@pytest.fixture
def action(users):
    action = ActionFactory(inputs={"branch": {"type": "string"}}, required=["branch"])
    grant("execute", action, users=[users["dev"]])
    return action


def test_request_a_run(users, action):
    response = api_for(users["dev"]).post("/v1/actions/deploy/runs", {"properties": {"branch": "main"}, "entity": "portal"},
                                          format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["ok"] is True
    run = body["run"]
    assert run["id"].startswith("r_") and run["status"] == "IN_PROGRESS"
    assert run["action"] == {"identifier": "deploy", "title": "Deploy"}
    assert run["entity"] == {"identifier": "portal", "title": "portal"}
    assert run["properties"] == {"branch": "main"} and run["createdBy"] == "dev@example.com" and run["source"] == "API"


def test_request_errors_name_the_field(users, action):
    api = api_for(users["dev"])
    response = api.post("/v1/actions/deploy/runs", {"properties": {}, "entity": "portal"}, format="json")
    assert response.status_code == 422
    assert response.json() == {"ok": False, "error": "invalid_request", "message": "properties.branch: is required"}
    response = api.post("/v1/actions/deploy/runs", {"properties": {"branch": "x"}, "entyty": "portal"}, format="json")
    assert response.status_code == 422 and response.json()["message"].startswith("entyty: is not a field")
    assert api.post("/v1/actions/nope/runs", {}, format="json").status_code == 404


def test_quota_refusal_envelope(users):
    action = ActionFactory(quota={"perUser": {"limit": 1, "period": "day"}})
    grant("execute", action, users=[users["dev"]])
    api = api_for(users["dev"])
    assert api.post("/v1/actions/deploy/runs", {"entity": "portal"}, format="json").status_code == 202
    response = api.post("/v1/actions/deploy/runs", {"entity": "portal"}, format="json")
    assert response.status_code == 429
    body = response.json()
    assert body["ok"] is False and body["error"] == "quota_exceeded"
    assert 86000 < int(response["Retry-After"]) <= 86400  # the first run's slot frees up in a day
    assert body["message"].startswith("quota.perUser: action 'deploy' allows at most 1 run per user per day; the next frees up at ")


def test_run_as(users, action):
    response = api_for(users["admin"]).post("/v1/actions/deploy/runs?run_as=dev@example.com",
                                            {"properties": {"branch": "b"}, "entity": "portal"}, format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["run"]["createdBy"] == "dev@example.com"
    response = api_for(users["dev"]).post("/v1/actions/deploy/runs?run_as=pay@example.com",
                                          {"properties": {"branch": "b"}, "entity": "portal"}, format="json")
    assert response.status_code == 403


def request_run(users, action, user="dev", entity="portal", **properties):
    return run_request(actor=actor_of(users[user]), action=action, properties=properties or {"branch": "main"},
                       entity_identifier=entity)


def test_get_and_patch_a_run(users, action):
    run = request_run(users, action)
    api = api_for(users["dev"])
    response = api.get(f"/v1/actions/runs/{run.id}")
    assert response.status_code == 200 and response.json()["run"]["id"] == run.id
    response = api.patch(f"/v1/actions/runs/{run.id}", {"status": "SUCCESS", "statusLabel": "done",
                                                        "link": ["https://ci/1"], "externalRunId": "42"}, format="json")
    assert response.status_code == 200, response.json()
    run_body = response.json()["run"]
    assert (run_body["status"], run_body["statusLabel"], run_body["link"], run_body["externalRunId"]) == (
        "SUCCESS", "done", ["https://ci/1"], "42")
    assert run_body["endedAt"] is not None
    response = api.patch(f"/v1/actions/runs/{run.id}", {"status": "FAILURE"}, format="json")
    assert response.status_code == 409 and response.json()["error"] == "illegal_transition"
    assert api.get("/v1/actions/runs/r_nope").status_code == 404


def test_the_same_final_status_again_is_a_no_op(users, action):
    """A client that lost the answer to its PATCH sends it again: 200 with the run as it is, no audit event."""
    run = request_run(users, action)
    api = api_for(users["dev"])
    first = api.patch(f"/v1/actions/runs/{run.id}", {"status": "SUCCESS"}, format="json")
    events = AuditEvent.objects.count()

    again = api.patch(f"/v1/actions/runs/{run.id}", {"status": "SUCCESS"}, format="json")

    assert first.status_code == 200 and again.status_code == 200, again.json()
    assert again.json()["run"]["status"] == "SUCCESS"
    assert again.json()["run"]["endedAt"] == first.json()["run"]["endedAt"]
    assert AuditEvent.objects.count() == events


def test_the_requester_cancels_a_run_waiting_for_approval(users):
    action = ActionFactory(required_approval={"type": "ANY"}, approval_timeout_seconds=3600)
    grant("execute", action, users=[users["dev"]])
    grant("approve", action, teams=["managers"])
    run = request_run(users, action, branch="x")

    response = api_for(users["dev"]).patch(f"/v1/actions/runs/{run.id}", {"status": "FAILURE",
                                                                        "statusLabel": "cancelled"}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["run"]["status"] == "FAILURE" and response.json()["run"]["endedAt"] is not None
    event = AuditEvent.objects.filter(verb="actions.run.updated", identifier=run.id).latest("id")
    assert (event.diff["before"]["status"], event.diff["after"]["status"]) == ("WAITING_FOR_APPROVAL", "FAILURE")
    approve = api_for(users["manager"]).patch(f"/v1/actions/runs/{run.id}/approval", {"status": "APPROVE"}, format="json")
    assert approve.status_code == 409
    success = request_run(users, action, branch="y")
    refused = api_for(users["dev"]).patch(f"/v1/actions/runs/{success.id}", {"status": "SUCCESS"}, format="json")
    assert refused.status_code == 409 and refused.json()["error"] == "illegal_transition"


def test_logs(users, action):
    run = request_run(users, action)
    api = api_for(users["dev"])
    response = api.post(f"/v1/actions/runs/{run.id}/logs", {"message": "starting"}, format="json")
    assert response.status_code == 201, response.json()
    log = response.json()["runLog"]
    assert log["runId"] == run.id and log["message"] == "starting" and log["createdAt"].endswith("Z")
    response = api.post(f"/v1/actions/runs/{run.id}/logs", {"message": "done", "terminationStatus": "SUCCESS",
                                                            "statusLabel": "shipped"}, format="json")
    assert response.status_code == 201
    response = api.get(f"/v1/actions/runs/{run.id}/logs")
    assert response.status_code == 200
    assert [entry["message"] for entry in response.json()["runLogs"]] == ["starting", "done"]
    response = api.patch(f"/v1/actions/runs/{run.id}", {"status": "FAILURE"}, format="json")
    assert response.status_code == 409 and "final" in response.json()["message"]
    assert api.post(f"/v1/actions/runs/{run.id}/logs", {}, format="json").status_code == 422


def test_approval_and_approvers(users):
    action = ActionFactory(required_approval={"type": "ALL"}, approval_timeout_seconds=3600)
    grant("execute", action, users=[users["dev"]])
    grant("approve", action, teams=["managers"])
    run = request_run(users, action, branch="x")
    response = api_for(users["manager"]).patch(f"/v1/actions/runs/{run.id}/approval",
                                               {"status": "APPROVE", "description": "lgtm"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["run"]["status"] == "WAITING_FOR_APPROVAL"
    response = api_for(users["dev"]).get(f"/v1/actions/runs/{run.id}/approvers")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "approvers": [
        {"userId": "manager2@example.com", "state": "PENDING", "description": ""},
        {"userId": "manager@example.com", "state": "APPROVED", "description": "lgtm"},
    ]}
    response = api_for(users["manager"]).patch(f"/v1/actions/runs/{run.id}/approval", {"status": "DECLINE"}, format="json")
    assert response.status_code == 409
    response = api_for(users["dev"]).patch(f"/v1/actions/runs/{run.id}/approval", {"status": "APPROVE"}, format="json")
    assert response.status_code == 403 and response.json()["message"] == "You cannot approve your own run."
    response = api_for(users["manager2"]).patch(f"/v1/actions/runs/{run.id}/approval", {"status": "MAYBE"}, format="json")
    assert response.status_code == 422 and response.json()["message"].startswith("status: must be APPROVE or DECLINE")


def test_approval_queue(users):
    action = ActionFactory(required_approval=True, approval_timeout_seconds=3600)
    grant("execute", action, users=[users["dev"], users["pay"]])
    grant("approve", action, teams=["managers"])
    first = request_run(users, action, branch="one")
    second = request_run(users, action, user="pay", entity="checkout", branch="two")
    response = api_for(users["manager"]).get("/v1/approvals")
    assert response.status_code == 200
    approvals = response.json()["runs"]
    assert [a["id"] for a in approvals] == [first.id, second.id]  # oldest first
    assert approvals[0]["requester"] == "dev@example.com" and approvals[0]["inputs"] == {"branch": "one"}
    assert approvals[0]["entity"] == {"identifier": "portal", "title": "portal"}
    assert 3590 <= approvals[0]["timeLeftSeconds"] <= 3600
    assert api_for(users["other"]).get("/v1/approvals").json()["runs"] == []
    # the requester does not see their own run to decide
    grant("approve", action, users=[users["dev"]])
    assert [a["id"] for a in api_for(users["dev"]).get("/v1/approvals").json()["runs"]] == [second.id]


def test_list_filters(users, action):
    other = ActionFactory(identifier="restart")
    grant("execute", other, users=[users["dev"]])
    deploy = request_run(users, action)
    restart = request_run(users, other, entity="checkout", branch="b")
    api = api_for(users["admin"])

    def ids(query):
        response = api.get("/v1/actions/runs" + query)
        assert response.status_code == 200, response.json()
        return [run["id"] for run in response.json()["runs"]]

    assert ids("") == [restart.id, deploy.id]
    assert ids("?action=deploy") == [deploy.id]
    assert ids("?entity=checkout") == [restart.id]
    assert ids("?blueprint=Service&limit=1") == [restart.id]
    assert ids("?user_email=dev@example.com") == [restart.id, deploy.id]
    assert ids("?user_email=pay@example.com") == []
    api_for(users["dev"]).patch(f"/v1/actions/runs/{deploy.id}", {"status": "SUCCESS", "externalRunId": "x1"}, format="json")
    assert ids("?active=true") == [restart.id]
    assert ids("?active=false") == [deploy.id]
    assert ids("?external_run_id=x1") == [deploy.id]
    assert api.get("/v1/actions/runs?active=maybe").status_code == 422


def test_list_query_count_does_not_grow(users, action):
    api = api_for(users["admin"])
    request_run(users, action)

    def count():
        with CaptureQueriesContext(connection) as queries:
            response = api.get("/v1/actions/runs")
        assert response.status_code == 200
        return len(queries), len(response.json()["runs"])

    one, rows = count()
    assert rows == 1
    for _ in range(5):
        request_run(users, action)
    many, rows = count()
    assert rows == 6 and many == one


def test_approval_queue_query_count_does_not_grow(users):
    action = ActionFactory(required_approval=True)
    grant("execute", action, users=[users["dev"]])
    grant("approve", action, teams=["managers"])
    api = api_for(users["manager"])
    request_run(users, action)

    def count():
        with CaptureQueriesContext(connection) as queries:
            response = api.get("/v1/approvals")
        assert response.status_code == 200
        return len(queries), len(response.json()["runs"])

    one, rows = count()
    for _ in range(4):
        request_run(users, action)
    many, rows_many = count()
    assert (rows, rows_many) == (1, 5) and many == one
    assert Run.objects.count() == 5
