"""Mirror properties respect read permission on the actions side: the entity page, and the entity that a run's
templates see (its payload, shown on the run). The catalog is tests/support/mirrors.py's
(the mirrored_catalog fixture)."""
import json

import pytest
from django.contrib.auth import get_user_model
from werkzeug.wrappers import Response

from actions.services.runs import run_request
from actions.tasks import run_dispatch_task
from catalog.models import Entity
from portal.actor import Actor
from tests.factories import ActionFactory
from tests.support.api import api_for
from tests.support.mirrors import HIDDEN_REGION, SECRET
from tests.support.runs import grant

pytestmark = pytest.mark.django_db


def user(email):
    return get_user_model().objects.get(email=email)


def entity_page(client, email):
    client.login(username=email, password="pw")
    response = client.get("/catalog/Service/checkout/")
    assert response.status_code == 200
    return response.content.decode()


def test_entity_page_shows_a_mirror_only_to_readers_of_what_it_mirrors(client, mirrored_catalog):
    html = entity_page(client, "dev@example.com")
    assert "Credential key" in html  # the row is there, empty
    for hidden in (SECRET, "Prod credential", HIDDEN_REGION, "payments-key"):
        assert hidden not in html
    assert "key:none" in html  # the calculation over the mirror sees null too
    html = entity_page(client, "admin@example.com")
    assert SECRET in html and HIDDEN_REGION in html and "payments-key" in html and f"key:{SECRET}" in html


@pytest.fixture
def hook(httpserver, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
    settings.WEBHOOK_SIGNING_SECRET = "whsec_test"
    received = []

    def handler(request):
        received.append(json.loads(request.get_data()))
        return Response("accepted", status=200)

    httpserver.expect_request("/hooks/rotate").respond_with_handler(handler)
    return httpserver.url_for("/hooks/rotate"), received


def run_on_checkout(requester, url, monkeypatch):
    """A member-runnable DAY-2 action with the classic envelope (the entity JSON in `payload.entity`), requested and
    delivered as a worker would."""
    action = ActionFactory(identifier="rotate", inputs={})
    action.invocation_method = {"type": "WEBHOOK", "url": url}
    action.save()
    grant("execute", action, teams=["platform", "security"])
    monkeypatch.setattr(run_dispatch_task, "delay", lambda run_id: None)
    run = run_request(actor=Actor(user=requester, origin="API"), action=action, properties={},
                      entity_identifier="checkout")
    run_dispatch_task(run.id)
    run.refresh_from_db()
    return run


def test_run_payload_entity_is_what_the_requester_may_read(mirrored_catalog, hook, monkeypatch):
    url, received = hook
    dev = user("dev@example.com")
    run = run_on_checkout(dev, url, monkeypatch)
    (body,) = received
    properties = body["payload"]["entity"]["properties"]
    assert {key: properties[key] for key in ("credentialKey", "regionName", "teamKeyValue", "keyLabel")} == {
        "credentialKey": None, "regionName": None, "teamKeyValue": None, "keyLabel": "key:none"}
    shown = api_for(dev).get(f"/v1/actions/runs/{run.id}")
    assert shown.status_code == 200 and shown.json()["run"]["payload"]["body"] == body
    assert SECRET not in shown.content.decode() and SECRET not in json.dumps(run.payload)


def test_run_payload_of_a_reader_of_the_target_holds_the_value(mirrored_catalog, hook, monkeypatch):
    url, received = hook
    run_on_checkout(user("sec@example.com"), url, monkeypatch)
    (body,) = received
    assert body["payload"]["entity"]["properties"]["credentialKey"] == SECRET
    assert body["payload"]["entity"]["properties"]["teamKeyValue"] is None  # security owns no TeamKey


def test_agent_claims_render_each_run_for_its_requester(mirrored_catalog):
    """Claimed runs are rendered in batches; each run's entity still reads as its own requester may read it."""
    from tests.support.agent import agent_action, agent_run, claim

    action = agent_action(body={"key": "{{ .entity.properties.credentialKey }}", "entity": "{{ .entity.identifier }}"})
    checkout = Entity.objects.get(identifier="checkout")
    runs = {agent_run(action, user(email), entity=checkout).id: email for email in ("dev@example.com", "sec@example.com")}
    claimed = claim(api_for(user("admin@example.com")), limit=10)
    assert claimed.status_code == 200, claimed.json()
    keys = {runs[run["id"]]: run["payload"]["body"].get("key") for run in claimed.json()["runs"]}
    assert keys == {"dev@example.com": None, "sec@example.com": SECRET}


def test_what_a_run_sent_is_read_only_by_its_requester_and_admins(mirrored_catalog, hook, monkeypatch):
    """sec@ may read the credential, so its run's payload holds the mirrored key; dev@ may read the run (it may read
    the entity) but not the credential, so the run shows dev@ no payload and no response."""
    url, received = hook
    run = run_on_checkout(user("sec@example.com"), url, monkeypatch)
    assert SECRET in json.dumps(run.payload)
    dev = api_for(user("dev@example.com"))
    for response in (dev.get(f"/v1/actions/runs/{run.id}"), dev.get("/v1/actions/runs?entity=checkout")):
        assert response.status_code == 200 and run.id in response.content.decode()
        assert SECRET not in response.content.decode()
    shown = dev.get(f"/v1/actions/runs/{run.id}").json()["run"]
    assert shown["payload"] is None and shown["response"] is None and shown["status"] == run.status
    for email in ("sec@example.com", "admin@example.com"):
        assert api_for(user(email)).get(f"/v1/actions/runs/{run.id}").json()["run"]["payload"] == run.payload
