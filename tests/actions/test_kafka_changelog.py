"""The change log to Kafka: entity and run changes of blueprints (or an organization) with a KAFKA
`changelogDestination` are written in the change's transaction and drained to `<organization>.change.log` in commit
order per entity, keyed `<blueprint>/<entity>` (one partition per entity); a broker outage keeps them pending, and
they go out in order once it is back. Against librdkafka's mock cluster (tests/support/kafka.py)."""
import json
from collections import defaultdict

import pytest

from actions.choices import RunStatus
from actions.services.agent import organization_settings_update
from actions.services.runs import run_finish
from catalog.models import Blueprint
from catalog.services.entities import UPSERT, entities_delete, entity_write_one
from portal.actor import Actor
from portal.changelog import changelog_drain
from portal.models import ChangeLogMessage
from tests.factories import ActionFactory, BlueprintFactory, RunFactory
from tests.support.kafka import MockCluster, consume

pytestmark = pytest.mark.django_db(transaction=True)
TOPIC = "portal.change.log"


@pytest.fixture
def logged_blueprints(kafka_cluster):
    BlueprintFactory(identifier="Service", schema={"properties": {"version": {"type": "number"}}},
                     changelogDestination={"type": "KAFKA"})
    BlueprintFactory(identifier="Env", schema={"properties": {}})


def write(identifier, version, blueprint="Service"):
    entity_write_one(actor=Actor.system(), blueprint=Blueprint.objects.get(identifier=blueprint), mode=UPSERT,
                     data={"identifier": identifier, "properties": {"version": version} if version else {}})


def by_key(messages):
    changes = defaultdict(list)
    for key, raw, partition, offset in messages:
        value = json.loads(raw)
        after = value["diff"]["after"]
        changes[key].append((value["action"], after["properties"].get("version") if after else None, partition))
    return changes


def test_entity_changes_reach_the_change_log_in_commit_order_per_entity(logged_blueprints, kafka_cluster):
    write("cart", 1)
    write("search", 1)
    write("cart", 2)
    write("staging", None, blueprint="Env")  # its blueprint has no change log destination
    write("search", 2)
    write("cart", 3)
    entities_delete(actor=Actor.system(), blueprint=Blueprint.objects.get(identifier="Service"), identifiers=["cart"])

    changes = by_key(consume(kafka_cluster.bootstrap, TOPIC, group="auditors", count=7))
    assert sorted(changes) == ["Service/cart", "Service/search"]
    assert [change[:2] for change in changes["Service/cart"]] == [("CREATE", 1), ("UPDATE", 2), ("UPDATE", 3),
                                                                  ("DELETE", None)]
    assert [change[:2] for change in changes["Service/search"]] == [("CREATE", 1), ("UPDATE", 2)]
    assert all(len({partition for *_, partition in keyed}) == 1 for keyed in changes.values())
    assert not ChangeLogMessage.objects.filter(published_at__isnull=True).exists()
    message = ChangeLogMessage.objects.filter(key="Service/cart").first().value
    assert message["resourceType"] == "entity" and message["changelogDestination"] == {"type": "KAFKA"}
    assert message["context"] == {"blueprintIdentifier": "Service", "entityIdentifier": "cart", "runId": None}
    assert message["diff"]["before"] is None


def test_a_broker_outage_keeps_the_change_log_pending_and_in_order(logged_blueprints, kafka_cluster, settings):
    write("cart", 1)
    assert len(consume(kafka_cluster.bootstrap, TOPIC, group="auditors", count=1)) == 1

    kafka_cluster.stop()
    for version in (2, 3, 4):
        write("cart", version)
    write("search", 1)
    assert ChangeLogMessage.objects.filter(published_at__isnull=True).count() == 4

    returned = MockCluster()
    settings.KAFKA_BROKERS = returned.bootstrap
    try:
        assert changelog_drain() == 4
        assert changelog_drain() == 0  # nothing published twice
        changes = by_key(consume(returned.bootstrap, TOPIC, group="auditors", count=4))
    finally:
        returned.stop()
    assert [change[:2] for change in changes["Service/cart"]] == [("UPDATE", 2), ("UPDATE", 3), ("UPDATE", 4)]
    assert [change[:2] for change in changes["Service/search"]] == [("CREATE", 1)]


def test_the_organizations_destination_logs_run_changes(logged_blueprints, kafka_cluster):
    organization_settings_update(actor=Actor.system(), settings={"changelogDestination": {"type": "KAFKA"}})
    action = ActionFactory(identifier="deploy", blueprint_identifier="Env", trigger_type="self-service",
                           invocation_method={"type": "WEBHOOK", "url": "http://127.0.0.1/"})
    run = RunFactory(id="r_logged", action=action, blueprint_identifier="Env", status=RunStatus.IN_PROGRESS)
    run_finish(actor=Actor.system(), run=run, status=RunStatus.SUCCESS, label="done")

    ((key, raw, _, _),) = consume(kafka_cluster.bootstrap, TOPIC, group="auditors", count=1)
    value = json.loads(raw)
    assert key == "r_logged" and value["resourceType"] == "run" and value["action"] == "UPDATE"
    assert (value["diff"]["before"]["status"], value["diff"]["after"]["status"]) == ("IN_PROGRESS", "SUCCESS")


def test_a_blueprints_destination_logs_its_runs_and_no_others(logged_blueprints, kafka_cluster):
    for identifier, blueprint in (("deploy", "Service"), ("refresh", "Env")):
        action = ActionFactory(identifier=identifier, blueprint_identifier=blueprint, trigger_type="self-service",
                               invocation_method={"type": "WEBHOOK", "url": "http://127.0.0.1/"})
        run = RunFactory(id=f"r_{identifier}", action=action, blueprint_identifier=blueprint,
                         status=RunStatus.IN_PROGRESS)
        run_finish(actor=Actor.system(), run=run, status=RunStatus.FAILURE, label="no")

    messages = consume(kafka_cluster.bootstrap, TOPIC, group="auditors", count=1)
    assert [key for key, *_ in messages] == ["r_deploy"]
    assert json.loads(messages[0][1])["context"]["blueprintIdentifier"] == "Service"
