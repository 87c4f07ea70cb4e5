"""Secrets reach the receiver and nobody else: a run's stored payload and response, its JSON, logs, page and
audit trail hold neither the secret, nor any transformation of it, nor the action's literal credentials."""
import base64
import json

import pytest
from werkzeug.wrappers import Response

from actions.models import Run
from actions.secrets import secret_set
from actions.tasks import run_dispatch_task
from audit.models import AuditEvent
from portal.actor import Actor
from tests.factories import UserFactory
from tests.support.action_definitions import catalog_setup
from tests.support.agent import AGENT_HEADERS, CLAIM, agent_action, agent_run

pytestmark = pytest.mark.django_db
SECRET = "tok-Very-Secret-42"
B64 = base64.b64encode(SECRET.encode()).decode()
LITERAL = "Bearer literal-abc123-XYZ"
FORMS = (SECRET, B64, SECRET.lower(), LITERAL)


@pytest.fixture(autouse=True)
def secrets_webhook_settings(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
    settings.WEBHOOK_SIGNING_SECRET = "whsec_test_key"
    settings.CELERY_TASK_ALWAYS_EAGER = True


def echo(httpserver, received):
    """A receiver that answers with what it got (as debugging receivers do)."""
    def handler(request):
        received.append(request)
        return Response(json.dumps({"headers": dict(request.headers), "body": request.get_json()}), status=200,
                        content_type="application/json")

    httpserver.expect_request("/hook").respond_with_handler(handler)


def assert_nowhere(*texts):
    for text in texts:
        for form in FORMS:
            assert form not in text


def test_transformed_secrets_reach_the_receiver_and_nothing_that_others_read(admin_api, member_api, client, httpserver):
    catalog_setup()
    secret_set(actor=Actor.system(), name="API_KEY", value=SECRET)
    received = []
    echo(httpserver, received)
    action = {
        "identifier": "notify", "title": "Notify",
        "trigger": {"type": "self-service", "operation": "CREATE", "blueprintIdentifier": "Service",
                    "userInputs": {"properties": {}, "required": []}},
        "invocationMethod": {
            "type": "WEBHOOK", "url": httpserver.url_for("/hook"), "synchronized": True,
            "headers": {"Authorization": LITERAL, "X-Api-Key": "{{ .secrets.API_KEY | @base64 }}",
                        "X-Lower": "lower {{ .secrets.API_KEY | ascii_downcase }}"},
            "body": {"data": "{{ .secrets.API_KEY | @base64 }}", "runId": "{{ .run.id }}"},
        },
    }
    assert admin_api.post("/v1/actions", action, format="json").status_code == 201
    admin_api.patch("/v1/actions/notify/permissions", {"execute": {"roles": ["Member"]}}, format="json")
    response = member_api.post("/v1/actions/notify/runs", {"properties": {}}, format="json")
    assert response.status_code == 202, response.json()
    run_id = response.json()["run"]["id"]
    run_dispatch_task(run_id)

    (request,) = received
    assert request.headers["Authorization"] == LITERAL and request.headers["X-Api-Key"] == B64
    assert request.headers["X-Lower"] == f"lower {SECRET.lower()}"
    assert request.get_json() == {"data": B64, "runId": run_id}
    run = Run.objects.get(pk=run_id)
    assert run.status == "SUCCESS"
    assert run.payload["headers"] == {"Authorization": "[redacted]", "X-Api-Key": "[redacted]", "X-Lower": "[redacted]"}
    assert run.payload["body"] == {"data": "[redacted]", "runId": run_id}
    assert run.response["body"] == {"data": "[redacted]", "runId": run_id}  # the echo, scrubbed too

    # The requester reports back, echoing the secret: shown to everyone who may read the run, so scrubbed.
    member_api.post(f"/v1/actions/runs/{run_id}/logs", {"message": f"called with {SECRET}"}, format="json")
    member_api.patch(f"/v1/actions/runs/{run_id}", {"summary": f"key {SECRET}", "statusLabel": f"done {SECRET}"},
                     format="json")
    logs = member_api.get(f"/v1/actions/runs/{run_id}/logs").json()["runLogs"]
    assert logs[-1]["message"] == "called with [redacted]"

    client.force_login(member_api.user)
    page = client.get(f"/runs/{run_id}/")
    assert page.status_code == 200
    run.refresh_from_db()
    assert_nowhere(
        json.dumps([run.payload, run.response, run.summary, run.status_label, run.links]),
        member_api.get(f"/v1/actions/runs/{run_id}").content.decode(),
        member_api.get("/v1/actions/runs").content.decode(),
        admin_api.get(f"/v1/actions/runs/{run_id}").content.decode(),
        json.dumps(logs),
        page.content.decode(),
        json.dumps([[e.diff, e.context, e.message] for e in AuditEvent.objects.all()]),
    )


def test_an_agent_claims_the_real_request_and_the_run_stores_the_mask(admin_api, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    secret_set(actor=Actor.system(), name="DEPLOY_TOKEN", value=SECRET)
    action = agent_action(headers={"Authorization": LITERAL, "X-Sig": "{{ .secrets.DEPLOY_TOKEN | @base64 }}"},
                          body={"token": "{{ .secrets.DEPLOY_TOKEN | ascii_downcase }}"})
    run = agent_run(action, UserFactory(email="dev@example.com"))
    assert run.payload["headers"] == {"Authorization": "[redacted]", "X-Sig": "[redacted]"}
    assert run.payload["body"] == {"token": "[redacted]"}

    response = admin_api.post(CLAIM, {"installationId": "agent-a", "limit": 10}, format="json", **AGENT_HEADERS)
    (claimed,) = response.json()["runs"]
    assert claimed["payload"]["headers"] == {"Authorization": LITERAL, "X-Sig": B64}
    assert claimed["payload"]["body"] == {"token": SECRET.lower()}
    # The agent hands back what the receiver answered: an echo of the request.
    echoed = {"headers": claimed["payload"]["headers"], "body": claimed["payload"]["body"]}
    response = admin_api.patch(f"/v1/actions/runs/{run.id}/response", {"response": echoed}, format="json")
    assert response.status_code == 200, response.json()
    run.refresh_from_db()
    assert run.response == {"headers": {"Authorization": "[redacted]", "X-Sig": "[redacted]"}, "body": {"token": "[redacted]"}}
    assert_nowhere(json.dumps([run.payload, run.response]), admin_api.get(f"/v1/actions/runs/{run.id}").content.decode(),
                   json.dumps([[e.diff, e.context, e.message] for e in AuditEvent.objects.all()]))
