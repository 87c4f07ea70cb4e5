"""Issue 3's 'done when': the whole developer-environment story through the API alone."""
import base64
import hashlib
import hmac
import json

import pytest
from werkzeug.wrappers import Response

from audit.models import AuditEvent
from catalog.models import Entity
from tests.factories import UserFactory
from tests.support.api import api_for

pytestmark = pytest.mark.django_db(transaction=True)


def signing_secret():
    from actions.backends.signing import signing_secret as secret  # noqa: PLC0415 - the backend's own key

    return secret()


def test_spin_up_a_developer_environment(httpserver, settings, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    platform = api_for(UserFactory(email="platform@example.com", admin=True))
    developer_user = UserFactory(email="dev@example.com", teams=["Checkout"])
    manager_user = UserFactory(email="manager@example.com", teams=["Managers"])
    developer, manager = api_for(developer_user), api_for(manager_user)

    assert platform.post("/v1/blueprints", {
        "identifier": "devEnvironment", "title": "Developer environment",
        "schema": {"properties": {"branch": {"type": "string"}, "url": {"type": "string", "format": "url"},
                                  "ttl": {"type": "string", "format": "timer"}}},
    }, format="json").status_code == 201
    action = {
        "identifier": "create_dev_env", "title": "Spin up a developer environment",
        "trigger": {"type": "self-service", "operation": "CREATE", "blueprintIdentifier": "devEnvironment",
                    "userInputs": {"properties": {"branch": {"type": "string", "pattern": "^[a-z0-9-]+$"}},
                                   "required": ["branch"], "order": ["branch"]}},
        "invocationMethod": {"type": "WEBHOOK", "url": httpserver.url_for("/hooks/dev-env"), "synchronized": False,
                             "body": {"runId": "{{ .run.id }}", "branch": "{{ .inputs.branch }}", "requester": "{{ .trigger.by.user.email }}"}},
        "requiredApproval": {"type": "ANY"},
        "quota": {"liveEntitiesPerUser": 2},
    }
    created = platform.post("/v1/actions", action, format="json")
    assert created.status_code == 201, created.json()
    permissions = platform.patch("/v1/actions/create_dev_env/permissions", {
        "execute": {"teams": ["Checkout"]}, "approve": {"teams": ["Managers"]}}, format="json")
    assert permissions.status_code == 200, permissions.json()

    received = []

    def receiver(request):
        received.append(request)
        return Response("{}", status=200, content_type="application/json")

    httpserver.expect_request("/hooks/dev-env", method="POST").respond_with_handler(receiver)

    requested = developer.post("/v1/actions/create_dev_env/runs", {"properties": {"branch": "feature-x"}}, format="json")
    assert requested.status_code == 202, requested.json()
    run = requested.json()["run"]
    assert run["status"] == "WAITING_FOR_APPROVAL"
    assert developer.patch(f"/v1/actions/runs/{run['id']}/approval", {"status": "APPROVE"}, format="json").status_code == 403
    queue = manager.get("/v1/approvals").json()
    assert [r["id"] for r in queue["runs"]] == [run["id"]]

    with django_capture_on_commit_callbacks(execute=True):
        approved = manager.patch(f"/v1/actions/runs/{run['id']}/approval", {"status": "APPROVE", "description": "ok"}, format="json")
    assert approved.status_code == 200, approved.json()
    assert approved.json()["run"]["status"] == "IN_PROGRESS"

    assert len(received) == 1
    request = received[0]
    raw = request.get_data()
    body = json.loads(raw)
    assert body == {"runId": run["id"], "branch": "feature-x", "requester": "dev@example.com"}
    timestamp = request.headers["x-port-timestamp"]
    expected = base64.b64encode(hmac.new(signing_secret().encode(), f"{timestamp}.{raw.decode()}".encode(), hashlib.sha256).digest()).decode()
    assert request.headers["x-port-signature"] == f"v1,{expected}"

    # The receiver (CI) reports back with the platform's machine credentials.
    assert platform.post(f"/v1/actions/runs/{run['id']}/logs", {"message": "provisioning"}, format="json").status_code == 201
    upsert = platform.post(f"/v1/blueprints/devEnvironment/entities?upsert=true&run_id={run['id']}",
                           {"identifier": "dev-feature-x", "properties": {"branch": "feature-x", "url": "https://dev-x.example.com"}},
                           format="json")
    assert upsert.status_code == 201, upsert.json()
    done = platform.patch(f"/v1/actions/runs/{run['id']}", {"status": "SUCCESS", "link": "https://ci.example.com/1"}, format="json")
    assert done.status_code == 200 and done.json()["run"]["status"] == "SUCCESS"

    story = developer.get(f"/v1/actions/runs/{run['id']}").json()["run"]
    assert story["status"] == "SUCCESS" and story["link"] == ["https://ci.example.com/1"]
    assert story["result"]["identifier"] == "dev-feature-x"
    assert Entity.objects.get(identifier="dev-feature-x").run_id == run["id"]
    logs = developer.get(f"/v1/actions/runs/{run['id']}/logs").json()["runLogs"]
    assert [log["message"] for log in logs] == ["provisioning"]
    verbs = set(AuditEvent.objects.filter(run_id=run["id"]).values_list("verb", flat=True))
    assert {"actions.run.created", "actions.run.approval_decided", "catalog.entity.created"} <= verbs
