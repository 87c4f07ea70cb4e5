"""portal.events has one mechanism: every subscriber runs in the writer's transaction, and its error fails the write
(nothing runs after commit, nothing is swallowed)."""
import pytest

from audit.models import AuditEvent
from catalog.models import Entity
from portal import events
from tests.factories import UserFactory
from tests.support.api import api_for
from tests.support.automations import env_setup

pytestmark = pytest.mark.django_db


@pytest.fixture
def failing_subscriber():
    def fail(changes):
        raise RuntimeError(f"subscriber broke on {changes[0]['identifier']}")

    events.subscribe(events.ENTITY_CHANGED, fail)
    yield fail
    events._subscribers[events.ENTITY_CHANGED].remove(fail)


def test_a_subscriber_error_fails_the_write_with_an_envelope_and_nothing_written(failing_subscriber, caplog):
    env_setup()
    api = api_for(UserFactory(email="platform@example.com", admin=True))
    api.raise_request_exception = False
    audited = AuditEvent.objects.count()
    response = api.post("/v1/blueprints/devEnv/entities", {"identifier": "env-1"}, format="json", HTTP_X_REQUEST_ID="req-9")
    assert response.status_code == 500
    assert response.json() == {"ok": False, "error": "internal_error", "message": "Internal error; the request id is req-9."}
    assert not Entity.objects.filter(identifier="env-1").exists() and AuditEvent.objects.count() == audited
    logged = [record for record in caplog.records if record.levelname == "ERROR" and record.exc_info]
    assert logged and "subscriber broke on env-1" in str(logged[0].exc_info[1])
