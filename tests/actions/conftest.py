import pytest

from actions.tasks import run_dispatch_task
from catalog.models import Blueprint
from tests.factories import UserFactory
from tests.outbox import on_publish
from tests.support import action_definitions, runs


@pytest.fixture
def blueprints(db):
    """Blueprints Service and Environment, which the action definitions of tests/support/action_definitions.py use."""
    action_definitions.catalog_setup()
    return {bp.identifier: bp for bp in Blueprint.objects.all()}


@pytest.fixture
def users(db):
    """The run tests' catalog (tests/support/runs.py): users by role, services of two teams."""
    return runs.catalog_setup()


@pytest.fixture
def run_dispatch_skipped(monkeypatch):
    """Runs are not handed to a backend: the tests report back or decide themselves."""
    monkeypatch.setattr(run_dispatch_task, "delay", lambda run_id: None)


@pytest.fixture
def dispatched(monkeypatch):
    """The ids of the runs handed to run_dispatch_task, in order, instead of a broker."""
    calls = []
    on_publish(monkeypatch, {run_dispatch_task: lambda args: calls.append(args[0])})
    return calls


@pytest.fixture
def requester(db):
    return UserFactory(email="dev@example.com")


@pytest.fixture
def kafka_cluster(settings):
    """librdkafka's mock cluster on 127.0.0.1 as the portal's KAFKA_BROKERS (tests/support/kafka.py)."""
    from tests.support.kafka import MockCluster

    cluster = MockCluster()
    settings.KAFKA_BROKERS = cluster.bootstrap
    settings.KAFKA_DELIVERY_TIMEOUT_SECONDS = 1.5
    settings.CELERY_TASK_ALWAYS_EAGER = True
    yield cluster
    cluster.stop()
