"""The execution agent's side of a run: an action delivered through the agent (`agent_action`), its runs
(`agent_run`), and the claim/ack calls an agent makes."""
import json
from datetime import timedelta

from django.utils import timezone

from actions.choices import RunStatus
from actions.models import Action, Run
from actions.tasks import run_dispatch_task
from tests.factories import RunFactory

CLAIM, ACK = "/v1/actions/runs/claim-pending", "/v1/actions/runs/ack"
AGENT_HEADERS = {"HTTP_X_PORT_RESERVED_USAGE": "true"}


def agent_action(identifier="deploy", **invocation):
    action = Action(
        identifier=identifier, title="Deploy", trigger_type="self-service", operation="DAY-2", blueprint_identifier="Service",
        trigger={"type": "self-service", "operation": "DAY-2", "blueprintIdentifier": "Service",
                 "userInputs": {"properties": {}, "required": []}},
        invocation_method={"type": "WEBHOOK", "agent": True, "url": "http://deployer.internal/hooks/{{ .inputs.branch }}",
                           "method": "POST", "synchronized": True,
                           "headers": {"X-Token": "{{ .secrets.DEPLOY_TOKEN }}"},
                           "body": {"branch": "{{ .inputs.branch }}", "token": "{{ .secrets.DEPLOY_TOKEN }}",
                                    "entity": "{{ .entity.identifier }}", "runId": "{{ .run.id }}"},
                           **invocation})
    action.invocation_method_text = json.dumps(action.invocation_method)  # as action_create keeps it: in order
    action.save()
    return action


def agent_run(action, requester, *, branch="main", entity=None, dispatch=True, minutes_ago=0):
    run = RunFactory(
        id=f"r_{Run.objects.count():04d}", action=action, blueprint_identifier="Service", status=RunStatus.IN_PROGRESS,
        requested_by=requester, origin="API", properties={"branch": branch}, started_at=timezone.now(),
        entity=entity, entity_identifier=entity.identifier if entity else "")
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_ago))
    if dispatch:
        run_dispatch_task(run.id)  # the webhook backend records the redacted payload and leaves it for an agent
    run.refresh_from_db()
    return run


def claim(api, installation="agent-a", **body):
    return api.post(CLAIM, {"installationId": installation, "limit": 10, **body}, format="json", **AGENT_HEADERS)


def ack(api, *run_ids):
    return api.patch(ACK, {"runIds": list(run_ids)}, format="json", **AGENT_HEADERS)
