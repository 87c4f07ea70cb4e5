"""The KAFKA backend against librdkafka's mock cluster (tests/support/kafka.py): a run is published once, after
commit, key its id and value Port's run message, read by a consumer group; a broker outage delays publishing and
every run still arrives exactly once; the run records where it landed only from the delivery report."""
import json

import pytest
from django.test import TestCase
from django.utils import timezone

from actions.backends import backend_unavailable, kafka
from actions.choices import RunStatus
from actions.definitions import action_definition_clean
from actions.models import Action, Run
from actions.services.runs import run_delivery_leases_expire, run_dispatch_claim
from actions.tasks import run_dispatch_task
from portal.errors import ValidationFailed
from tests.factories import ActionFactory, RunFactory, UserFactory
from tests.outbox import published
from tests.support.action_definitions import DEV_ENV
from tests.support.pages import get
from tests.support.kafka import MockCluster, consume

pytestmark = pytest.mark.django_db(transaction=True)


def kafka_run(invocation=None, *, branch="main"):
    action = Action.objects.filter(identifier="publish").first() or ActionFactory(
        identifier="publish", title="Publish", trigger_type="self-service", operation="CREATE",
        blueprint_identifier="Service",
        trigger={"type": "self-service", "operation": "CREATE", "blueprintIdentifier": "Service",
                 "userInputs": {"properties": {"branch": {"type": "string"}}, "required": []}},
        invocation_method={"type": "KAFKA", **(invocation or {})})
    requester = UserFactory(email=f"dev{Run.objects.count()}@example.com")
    return RunFactory(id=f"r_k{Run.objects.count():04d}", action=action, blueprint_identifier="Service",
                      status=RunStatus.IN_PROGRESS, requested_by=requester, origin="API",
                      properties={"branch": branch}, started_at=timezone.now())


def dispatch(run):
    with TestCase.captureOnCommitCallbacks(execute=True):
        run_dispatch_task(run.id)
    run.refresh_from_db()
    return run


def test_a_run_is_published_once_and_read_by_a_consumer_group(kafka_cluster, client):
    run = dispatch(kafka_run())

    assert run.status == RunStatus.IN_PROGRESS  # the consumer reports back through the runs API
    assert run.published_to["topic"] == "portal.runs" and run.published_to["offset"] == 0
    assert [log.message for log in run.logs.all()] == [
        f"Published to portal.runs at offset 0 (partition {run.published_to['partition']})."]
    dispatch(run)  # a second dispatch of the same run claims nothing
    kafka.kafka_publish_attempt(run.id, 2)  # nor does an attempt that finds it published

    messages = consume(kafka_cluster.bootstrap, "portal.runs", group="runners", count=1)
    assert [(key, partition, offset) for key, _, partition, offset in messages] == [
        (run.id, run.published_to["partition"], 0)]
    body = json.loads(messages[0][1])
    assert body["context"] == {"entity": None, "blueprint": "Service", "runId": run.id}
    assert body["payload"]["action"]["invocationMethod"] == {"type": "KAFKA"}
    assert body["payload"]["properties"] == {"branch": "main"}
    assert body["trigger"]["by"]["userId"] == run.requested_by.email
    assert run.payload == body  # what was sent, as the run page shows it
    assert consume(kafka_cluster.bootstrap, "portal.runs", group="runners", count=0, timeout=3) == []
    page = get(client, run.requested_by, f"/runs/{run.id}/")
    assert f"Published to portal.runs at offset 0 (partition {run.published_to['partition']})" in page.text("run-live")


def test_the_topic_and_body_come_from_the_invocation_method(kafka_cluster):
    run = dispatch(kafka_run({"topic": "deploys", "body": {"ref": "{{ .inputs.branch }}", "run": "{{ .run.id }}"}},
                             branch="feature/ü"))

    assert run.published_to["topic"] == "deploys"
    (message,) = consume(kafka_cluster.bootstrap, "deploys", group="deployers", count=1)
    assert message[0] == run.id and json.loads(message[1]) == {"ref": "feature/ü", "run": run.id}


def test_a_broker_outage_delays_publishing_and_every_run_arrives_exactly_once(kafka_cluster, settings, monkeypatch,
                                                                              client):
    before_outage = [dispatch(kafka_run()) for _ in range(2)]
    assert [m[0] for m in consume(kafka_cluster.bootstrap, "portal.runs", group="runners", count=2)] and all(
        run.published_to for run in before_outage)

    kafka_cluster.stop()  # the broker goes away mid-stream
    retries = published(monkeypatch, kafka.kafka_publish_task)
    during_outage = [dispatch(kafka_run()) for _ in range(3)]
    assert retries == [("actions.kafka_publish", [run.id, 2]) for run in during_outage]
    for run in during_outage:
        assert run.status == RunStatus.IN_PROGRESS and run.published_to is None and run.next_attempt_at is not None
        assert run.logs.count() == 0
    page = get(client, during_outage[0].requested_by, f"/runs/{during_outage[0].id}/")
    assert "Waiting for delivery (attempt 2 of 20, next at" in page.text("run-live")
    assert "Published to" not in page.text("run-live")

    returned = MockCluster()  # the broker is back (at a new address)
    settings.KAFKA_BROKERS = returned.bootstrap
    try:
        for name, (run_id, attempt) in retries:
            kafka.kafka_publish_task(run_id, attempt)
            kafka.kafka_publish_task(run_id, attempt)  # the same retry delivered twice publishes once
        messages = consume(returned.bootstrap, "portal.runs", group="runners", count=3)
    finally:
        returned.stop()

    assert sorted(key for key, *_ in messages) == sorted(run.id for run in during_outage)
    for run in during_outage:
        run.refresh_from_db()
        assert run.published_to["offset"] >= 0 and run.attempts == 2


def test_a_run_that_cannot_be_published_fails_after_its_attempts(settings):
    settings.KAFKA_BROKERS = "127.0.0.1:1"  # nothing listens there
    settings.KAFKA_DELIVERY_TIMEOUT_SECONDS = 1
    settings.KAFKA_MAX_ATTEMPTS = 1
    run = dispatch(kafka_run())

    assert run.status == RunStatus.FAILURE and run.published_to is None
    assert run.status_label.startswith("Kafka publish to portal.runs failed (") and run.status_label.endswith(
        "after 1 attempt")


def test_kafka_actions_are_off_until_brokers_are_set(settings):
    settings.KAFKA_BROKERS = ""
    action = kafka_run().action

    assert backend_unavailable(action) == "Kafka is not configured: set KAFKA_BROKERS."
    settings.KAFKA_BROKERS = "127.0.0.1:9092"
    assert backend_unavailable(action) is None


@pytest.mark.parametrize("invocation, message", [
    ({"type": "KAFKA", "topic": "deploy requests"}, "invocationMethod.topic: must be a Kafka topic name"),
    ({"type": "KAFKA", "topic": "x" * 250}, "invocationMethod.topic: must be a Kafka topic name"),
    ({"type": "KAFKA", "url": "https://example.com"}, "invocationMethod: unknown keys ['url']"),
])
def test_a_kafka_invocation_method_names_what_is_wrong(blueprints, invocation, message):
    assert action_definition_clean({**DEV_ENV, "invocationMethod": {"type": "KAFKA", "topic": "deploys"}},
                                   blueprints=blueprints)["invocationMethod"] == {"type": "KAFKA", "topic": "deploys"}
    with pytest.raises(ValidationFailed) as caught:
        action_definition_clean({**DEV_ENV, "invocationMethod": invocation}, blueprints=blueprints)
    assert caught.value.message.startswith(message), caught.value.message


def test_a_worker_that_died_mid_publish_is_noticed_by_its_lease_and_the_run_published_once(kafka_cluster, settings,
                                                                                           monkeypatch):
    settings.DELIVERY_LEASE_SECONDS = 0
    run = kafka_run()
    assert run_dispatch_claim(run_id=run.id)  # attempt 1 claimed, then its worker died before publishing
    retries = published(monkeypatch, kafka.kafka_publish_task)

    assert run_delivery_leases_expire() == 1
    assert retries == [("actions.kafka_publish", [run.id, 2])]
    kafka.kafka_publish_task(run.id, 2)

    run.refresh_from_db()
    assert run.attempts == 2 and run.published_to["topic"] == "portal.runs"
    assert [key for key, *_ in consume(kafka_cluster.bootstrap, "portal.runs", group="runners", count=1)] == [run.id]
