"""A real Ocean integration (PyPI `port-ocean`, in its own Python >= 3.12 venv) against a live portal
(issue 13): tests/ocean/portal_fake serves two related kinds from a JSON file; Ocean registers it, creates its
blueprints, upserts what it maps and deletes what it owns and no longer sees, and nothing else."""
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from audit.models import AuditEvent
from catalog.models import Entity, Integration, IntegrationResync
from catalog.services.integrations import integration_resync_request
from catalog.selectors.blueprints import blueprint_get
from portal.actor import Actor
from tests.factories import EntityFactory
from tests.support.ocean import DATASOURCE, INTEGRATION_ID

pytestmark = [pytest.mark.django_db(transaction=True)]
ONCE_TIMEOUT = 180

TEAMS = [{"id": "payments", "name": "Payments"}, {"id": "platform", "name": "Platform"}]
SERVICES = [{"id": "cart", "name": "Cart", "language": "go", "team": "payments"},
            {"id": "checkout", "name": "Checkout", "language": "python", "team": "payments"},
            {"id": "search", "name": "Search", "language": "rust", "team": "platform"}]


def entities(blueprint):
    return dict(Entity.objects.filter(blueprint__identifier=blueprint).values_list("identifier", "datasource"))


def resync_once(run_ocean):
    ocean = run_ocean("ONCE")
    code = ocean.wait(ONCE_TIMEOUT)
    assert code == 0, ocean.output()
    return ocean


def test_once_resyncs_fill_two_related_blueprints_and_delete_only_what_the_integration_owns(run_ocean, source, client):
    source(TEAMS, SERVICES)

    first = resync_once(run_ocean)

    assert entities("oceanTeam") == {"payments": DATASOURCE, "platform": DATASOURCE}, first.output()
    assert entities("oceanService") == {"cart": DATASOURCE, "checkout": DATASOURCE, "search": DATASOURCE}
    cart = Entity.objects.get(identifier="cart")
    assert cart.title == "Cart" and cart.properties == {"language": "go"}
    assert list(cart.outgoing.values_list("relation", "target__identifier")) == [("team", "payments")]
    integration = Integration.objects.get(identifier=INTEGRATION_ID)
    assert integration.installation_app_type == "portal-fake" and integration.version == "0.1.0"
    assert [r["kind"] for r in integration.config["resources"]] == ["team", "service"]

    # A person adds a service to the same blueprint; the source loses "search".
    EntityFactory(blueprint=blueprint_get("oceanService"), actor=Actor(origin="UI", client_id="a-person"),
                  identifier="manual", title="Manual", relations={"team": "platform"})
    source(TEAMS, [s for s in SERVICES if s["id"] != "search"])

    second = resync_once(run_ocean)

    assert entities("oceanService") == {"cart": DATASOURCE, "checkout": DATASOURCE, "manual": ""}, second.output()
    assert entities("oceanTeam") == {"payments": DATASOURCE, "platform": DATASOURCE}
    deleted = AuditEvent.objects.filter(verb="catalog.entity.deleted")
    assert [(e.identifier, e.context.get("datasource")) for e in deleted] == [("search", DATASOURCE)]
    client_id = integration.created_by
    written = AuditEvent.objects.filter(verb__startswith="catalog.entity.", context__datasource=DATASOURCE)
    assert written.count() >= 6 and set(written.values_list("actor", flat=True)) == {client_id}
    resyncs = list(IntegrationResync.objects.filter(integration=integration).order_by("started_at"))
    assert [r.status for r in resyncs] == ["completed", "completed"], first.output() + second.output()
    assert all(r.ended_at >= r.started_at for r in resyncs)
    assert all({"team-0", "service-1"} <= set(r.metrics) for r in resyncs), [r.metrics for r in resyncs]

    # The integration's page (the admin) shows both resyncs with their counts.
    client.force_login(get_user_model().objects.get(email="ocean-admin@example.com"))
    page = client.get(reverse("admin:catalog_integration_change", args=[integration.pk])).content.decode()
    assert page.count("<td>completed</td>") == 2, page
    resync_rows = page[page.index("<th>counts</th>"):page.index("</table>", page.index("<th>counts</th>"))]
    assert resync_rows.count("service-1:") == 2 and resync_rows.count("team-0:") == 2, resync_rows

    # A source that lost everything would delete more than entityDeletionThreshold (0.9): Ocean deletes nothing.
    source([], [])
    third = resync_once(run_ocean)
    assert entities("oceanService").keys() == {"cart", "checkout", "manual"}, third.output()
    assert entities("oceanTeam").keys() == {"payments", "platform"}
    assert "Skipping deletion of entities with deletion rate" in Path(third.log_path).read_text()


def test_a_polling_integration_resyncs_when_someone_asks(run_ocean, source):
    source(TEAMS, SERVICES)
    ocean = run_ocean("POLLING", OCEAN__EVENT_LISTENER__INTERVAL="1")
    wait_for(lambda: IntegrationResync.objects.filter(status="completed").exists(), ocean, "first resync")
    assert entities("oceanService").keys() == {"cart", "checkout", "search"}
    time.sleep(3)  # a few polls without a request: no resync
    assert IntegrationResync.objects.count() == 1, ocean.output()
    source(TEAMS, SERVICES[:1])

    integration_resync_request(actor=Actor(origin="ADMIN", client_id="a-person"),
                               integration=Integration.objects.get(identifier=INTEGRATION_ID))

    wait_for(lambda: IntegrationResync.objects.filter(status="completed").count() == 2, ocean, "resync on request")
    assert entities("oceanService") == {"cart": DATASOURCE}, ocean.output()


def wait_for(condition, ocean, what, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        assert ocean.process.poll() is None, f"Ocean exited before the {what}:\n{ocean.output()}"
        time.sleep(0.5)
    raise AssertionError(f"No {what} within {timeout}s:\n{ocean.output()}")
