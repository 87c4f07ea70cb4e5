"""Agent runs through Kafka: once Port's execution agent announces its Kafka streamer (PATCH /v1/organization),
runs of `agent: true` actions are published to the runs topic in the shape the agent reads in its Kafka mode
(port-labs/port-agent app/streamers/kafka/, app/invokers/webhook_invoker.py), and no longer handed out by
claim-pending. The test reads and verifies the message the way the agent does."""
import base64
import hashlib
import hmac
import json

import pytest
from django.test import TestCase

from actions.choices import RunStatus
from actions.secrets import secret_set
from actions.services.agent import ORGANIZATION_SETTINGS_UPDATED
from actions.tasks import run_dispatch_task
from audit.models import AuditEvent
from portal.actor import Actor
from tests.support.agent import agent_action, agent_run, claim
from tests.support.api import api_for
from tests.support.kafka import consume

pytestmark = pytest.mark.django_db(transaction=True)
AGENT_SECRET = "agent-client-secret-ü"


@pytest.fixture
def kafka_agent(admin_user, settings, kafka_cluster):
    """An admin's API client (the agent's) that announced the Kafka streamer, and the action it runs."""
    settings.KAFKA_AGENT_CLIENT_SECRET = AGENT_SECRET
    settings.WEBHOOK_SIGNING_SECRET = "whsec_test_key"
    secret_set(actor=Actor.system(), name="DEPLOY_TOKEN", value="tok-secret")
    api = api_for(admin_user)
    response = api.patch("/v1/organization", {"settings": {"portAgentStreamerName": "KAFKA"}}, format="json")
    assert response.status_code == 200
    assert response.json()["organization"]["settings"] == {"portAgentStreamerName": "KAFKA"}
    return api, agent_action()


def dispatched(action, requester, **options):
    run = agent_run(action, requester, dispatch=False, **options)
    with TestCase.captureOnCommitCallbacks(execute=True):
        run_dispatch_task(run.id)
    run.refresh_from_db()
    return run


def agent_reads(raw: bytes, secret: str):
    """What the agent does with a runs-topic message: its invocation method (skipped unless agent), and whether
    the signature verifies (headers without the two signature keys, compact JSON, non-ASCII kept)."""
    message = json.loads(raw.decode())
    invocation = dict(message.get("payload", {}).get("action", {}).get("invocationMethod", {}))
    signature, timestamp = message["headers"].pop("X-Port-Signature"), message["headers"].pop("X-Port-Timestamp")
    signed = f"{timestamp}.{json.dumps(message, separators=(',', ':'), ensure_ascii=False)}".encode()
    expected = "v1," + base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    return message, invocation, signature == expected


def test_the_organization_settings_are_stored_and_audited(kafka_agent, admin_user):
    api, _ = kafka_agent

    assert api.get("/v1/organization").json()["organization"]["settings"] == {"portAgentStreamerName": "KAFKA"}
    (event,) = AuditEvent.objects.filter(verb=ORGANIZATION_SETTINGS_UPDATED)
    assert event.diff == {"before": {}, "after": {"portAgentStreamerName": "KAFKA"}}
    response = api.patch("/v1/organization", {"settings": {"changelogDestination": "KAFKA"}}, format="json")
    assert response.status_code == 422
    assert response.json()["message"] == "settings.changelogDestination: must be an object with a type, or null"


def test_agent_runs_are_published_in_the_agents_kafka_shape(kafka_agent, kafka_cluster, requester):
    api, action = kafka_agent
    run = dispatched(action, requester, branch="release/ü")

    assert run.status == RunStatus.IN_PROGRESS and run.published_to["topic"] == "portal.runs"
    ((key, raw, _, offset),) = consume(kafka_cluster.bootstrap, "portal.runs", group="port-agent", count=1)
    message, invocation, verified = agent_reads(raw, AGENT_SECRET)
    assert key == run.id and offset == run.published_to["offset"] and verified
    assert invocation.pop("agent") is True
    assert invocation == {"type": "WEBHOOK", "url": "http://deployer.internal/hooks/release/ü", "synchronized": True,
                          "method": "POST"}
    assert message["context"]["runId"] == run.id and message["payload"]["properties"] == {"branch": "release/ü"}
    assert "tok-secret" not in json.dumps(run.payload)
    # Published to Kafka, so not handed out to polling agents as well.
    assert claim(api).json()["runs"] == []


def test_a_message_signed_with_another_secret_does_not_verify(kafka_agent, kafka_cluster, requester):
    _, action = kafka_agent
    dispatched(action, requester)

    ((_, raw, _, _),) = consume(kafka_cluster.bootstrap, "portal.runs", group="port-agent", count=1)
    assert agent_reads(raw, "another-secret")[2] is False


def test_polling_agents_keep_their_runs_off_kafka(kafka_agent, requester):
    api, action = kafka_agent
    api.patch("/v1/organization", {"settings": {"portAgentStreamerName": "POLLING"}}, format="json")
    run = dispatched(action, requester)

    assert run.published_to is None and [claimed["id"] for claimed in claim(api).json()["runs"]] == [run.id]


def test_without_the_agents_secret_the_run_fails_saying_so(kafka_agent, requester, settings):
    settings.KAFKA_AGENT_CLIENT_SECRET = ""
    run = dispatched(kafka_agent[1], requester)

    assert run.status == RunStatus.FAILURE and run.published_to is None
    assert "KAFKA_AGENT_CLIENT_SECRET is not set" in run.status_label
