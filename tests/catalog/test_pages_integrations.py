"""`/integrations/` (issue 13): each integration with its type, version, last resync and its counts, and a
"Resync now" button that POLLING integrations see through resync-request; admins only; two queries for any
number of integrations."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from catalog.models import Integration
from catalog.services.integrations import (integration_create, integration_kind_metrics_record,
                                           integration_resync_state_update)
from portal.actor import Actor
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def registered(identifier, *, resynced=True):
    integration = integration_create(actor=Actor.system(), data={
        "installationId": identifier, "installationAppType": "github", "version": "2.1.0", "config": {}},
        check_blueprints=False)
    if resynced:
        integration_resync_state_update(actor=Actor.system(), integration=integration, data={"status": "running"})
        integration_kind_metrics_record(integration=integration, event_id="e", kind="repository-0",
                                        metrics={"metrics": {"loaded": 12}})
        integration_resync_state_update(actor=Actor.system(), integration=integration, data={"status": "completed"})
    return integration


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_the_page_lists_integrations_with_their_last_resync_and_counts(admin_client):
    registered("gh-prod")
    registered("gh-new", resynced=False)

    page = admin_client.get("/integrations/").content.decode()

    assert "gh-prod" in page and "github" in page and "2.1.0" in page
    assert "completed" in page and "repository-0" in page and "never" in page


def test_resync_now_is_served_to_polling_integrations(admin_client, admin_api):
    registered("gh-prod")

    response = admin_client.post("/integrations/", {"resync": "gh-prod"})

    assert response.status_code == 302
    polled = admin_api.get("/v1/integration/gh-prod/resync-request").json()
    assert polled["request"]["updatedAt"] is not None
    event = AuditEvent.objects.get(verb="catalog.integration.resync_requested")
    assert event.origin == "UI" and Integration.objects.get().resync_requested_at is not None


def test_only_admins_see_integrations(client):
    client.force_login(UserFactory(email="dev@example.com"))

    assert client.get("/integrations/").status_code == 403
    assert client.post("/integrations/", {"resync": "x"}).status_code == 403


def test_the_query_count_does_not_grow_with_integrations(admin_client):
    registered("one")
    with CaptureQueriesContext(connection) as one:
        admin_client.get("/integrations/")
    for i in range(4):
        registered(f"more-{i}")
    with CaptureQueriesContext(connection) as many:
        admin_client.get("/integrations/")

    assert len(many) == len(one)
