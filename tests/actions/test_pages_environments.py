"""/environments/: my entities with a TTL, extend (ttl_extend) within the maximum, terminate (the DELETE action)."""
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from actions.choices import RunOrigin
from actions.models import Action, Run
from actions.services.actions import action_permissions_update
from actions.services.ttl import TTL_EXTENDED
from audit.models import AuditEvent
from catalog.models import Blueprint, Entity, Timer
from catalog.services.permissions import blueprint_permissions_update
from portal.actor import Actor
from portal.datetimes import instant_text
from tests.factories import EntityFactory, UserFactory
from tests.support.environments import TERMINATE, dev_environment, ttl_world

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()


@pytest.fixture
def world(db):
    actions = ttl_world()
    users = {"dev": UserFactory(email="dev@example.com"), "other": UserFactory(email="other@example.com"),
             "admin": UserFactory(email="admin@example.com", admin=True)}
    return {"actions": actions, **users}


def text(response):
    return re.sub(r"\s+", " ", response.content.decode())


def get(client, user, query=""):
    client.force_login(user)
    return client.get("/environments/" + query)


def rows(html):
    return re.findall(r'<tr id="env-\d+">(.*?)</tr>', html)


# --- the list -------------------------------------------------------------------------------------------------

def test_lists_my_environments_with_url_expiry_countdown_and_buttons(client, world):
    dev_environment(world["dev"], "env-mine", expires_in=timedelta(days=2, hours=3, minutes=30))
    dev_environment(world["other"], "env-theirs")
    response = get(client, world["dev"])
    assert response.status_code == 200
    (row,) = rows(text(response))
    assert 'href="/catalog/devEnvironment/env-mine/">Env env-mine</a>' in row
    assert "Developer environment" in row and 'href="https://env.example.com"' in row
    assert re.search(r'<time data-countdown datetime="[\d-]+T[\d:.]+Z">2d 3h left</time>', row)
    assert 'aria-label="Extend Env env-mine by 3d">Extend by 3d</button>' in row
    assert 'data-confirm="Terminate Env env-mine now?' in row and ">Terminate</button>" in row
    assert "maximum 14d" in row


def test_an_entity_i_created_is_mine_too(client, world):
    blueprint = Blueprint.objects.get(identifier="devEnvironment")
    EntityFactory(blueprint=blueprint, actor=Actor(user=world["admin"]), identifier="env-admin",
                  properties={"ttl": instant_text(timezone.now() + timedelta(days=1))})
    assert len(rows(text(get(client, world["admin"])))) == 1
    assert rows(text(get(client, world["dev"]))) == []


def test_near_the_maximum_extend_says_it_stops_there(client, world):
    dev_environment(world["dev"], "env-old", created_ago=timedelta(days=12), expires_in=timedelta(days=1))
    (row,) = rows(text(get(client, world["dev"])))
    assert 'aria-label="Extend Env env-old to its maximum">Extend to the maximum</button>' in row


def test_at_the_maximum_the_extend_button_is_disabled_and_says_so(client, world):
    entity = dev_environment(world["dev"], "env-old", created_ago=timedelta(days=13), expires_in=timedelta(days=1))
    Timer.objects.filter(entity=entity).update(expires_at=entity.created_at + timedelta(days=14))
    (row,) = rows(text(get(client, world["dev"])))
    assert re.search(r'<button type="button" disabled[^>]*>Extend</button>', row)
    assert "At its maximum of 14d: it cannot be extended." in row
    assert "Extend by" not in row


def test_empty_state(client, world):
    html = text(get(client, world["dev"]))
    assert "You have no environments with a time to live" in html and "<table" not in html


def test_admins_may_show_everyones_and_others_may_not(client, world):
    dev_environment(world["dev"], "env-a")
    dev_environment(world["other"], "env-b")
    html = text(get(client, world["admin"]))
    assert rows(html) == [] and "Show everyone's environments" in html
    html = text(get(client, world["admin"], "?all=1"))
    assert len(rows(html)) == 2 and "dev@example.com" in html and "other@example.com" in html
    html = text(get(client, world["dev"], "?all=1"))
    assert len(rows(html)) == 1 and "Show everyone" not in html


def test_entities_the_user_may_no_longer_read_are_not_listed(client, world):
    dev_environment(world["dev"], "env-a")
    blueprint_permissions_update(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="devEnvironment"),
                                 data={"entities": {"read": {"roles": []}}})
    assert rows(text(get(client, world["dev"]))) == []


def test_without_a_delete_action_terminate_is_explained(client, world):
    dev_environment(world["dev"], "env-a")
    Action.objects.filter(identifier="terminate_dev_env").update(publish=False)
    (row,) = rows(text(get(client, world["dev"])))
    assert "No terminate action exists" in row and ">Terminate</button>" not in row
    Action.objects.filter(identifier="terminate_dev_env").update(publish=True)
    action_permissions_update(actor=SYSTEM, action=world["actions"]["terminate"], data={"execute": {"roles": []}})
    (row,) = rows(text(get(client, world["dev"])))
    assert "You may not run &#x27;Terminate environment&#x27;" in row and ">Terminate</button>" not in row


def test_a_delete_action_with_required_inputs_links_to_its_form(client, world):
    dev_environment(world["dev"], "env-a")
    Action.objects.filter(identifier="terminate_dev_env").update(trigger={
        **TERMINATE["trigger"], "userInputs": {"properties": {"why": {"type": "string"}}, "required": ["why"]}})
    (row,) = rows(text(get(client, world["dev"])))
    assert 'href="/actions/terminate_dev_env/run?entity=env-a">Terminate environment…</a>' in row


def test_a_teardown_under_way_offers_nothing(client, world):
    entity = dev_environment(world["dev"], "env-a", expires_in=timedelta(minutes=-1))
    Timer.objects.filter(entity=entity).update(fired_at=timezone.now())
    (row,) = rows(text(get(client, world["dev"])))
    assert "Expired: teardown under way" in row and "<form" not in row


# --- extend ---------------------------------------------------------------------------------------------------

def extend(client, entity, **extra):
    return client.post("/environments/extend", {"blueprint": "devEnvironment", "entity": entity, **extra})


def test_extend_moves_the_expiry_and_redirects_with_a_message(client, world):
    entity = dev_environment(world["dev"], "env-a")
    before = Timer.objects.get(entity=entity).expires_at
    client.force_login(world["dev"])
    response = extend(client, "env-a")
    assert response.status_code == 302 and response["Location"] == "/environments/"
    assert Timer.objects.get(entity=entity).expires_at == before + timedelta(days=3)
    (event,) = AuditEvent.objects.filter(verb=TTL_EXTENDED)
    assert event.actor == "dev@example.com" and event.origin == "UI"
    assert "Env env-a: extended by 3d, now expires" in text(client.get("/environments/"))


def test_extend_at_the_maximum_shows_the_services_message_at_the_row(client, world):
    entity = dev_environment(world["dev"], "env-a", created_ago=timedelta(days=13), expires_in=timedelta(days=1))
    limit = Entity.objects.get(pk=entity.pk).created_at + timedelta(days=14)
    Timer.objects.filter(entity=entity).update(expires_at=limit)
    client.force_login(world["dev"])
    response = extend(client, "env-a")
    assert response.status_code == 422
    (row,) = rows(text(response))
    assert re.search(r'<p class="error" role="alert">properties.ttl: the TTL is already at its maximum of P14D', row)
    assert not AuditEvent.objects.filter(verb=TTL_EXTENDED).exists()


def test_extend_by_a_stranger_is_refused_with_403(client, world):
    dev_environment(world["dev"], "env-a")
    Action.objects.filter(identifier="create_dev_env").update(publish=False)  # no grant path left but ownership
    action_permissions_update(actor=SYSTEM, action=world["actions"]["create"], data={"execute": {"roles": []}})
    client.force_login(world["other"])
    response = extend(client, "env-a")
    assert response.status_code == 403
    assert "You may not extend the TTL of entity &#x27;env-a&#x27;" in text(response)


def test_extend_of_an_unknown_entity_is_404(client, world):
    client.force_login(world["dev"])
    response = extend(client, "nope")
    assert response.status_code == 404 and "Entity &#x27;nope&#x27; of blueprint" in text(response)
    assert client.get("/environments/extend").status_code == 405


# --- terminate ------------------------------------------------------------------------------------------------

def test_terminate_requests_a_run_of_the_delete_action(client, world):
    dev_environment(world["dev"], "env-a")
    client.force_login(world["dev"])
    response = client.post("/environments/terminate", {"blueprint": "devEnvironment", "entity": "env-a"})
    assert response.status_code == 302 and response["Location"] == "/environments/"
    run = Run.objects.get(action__identifier="terminate_dev_env")
    assert run.entity_identifier == "env-a" and run.origin == RunOrigin.UI and run.requested_by == world["dev"]
    html = text(client.get("/environments/"))
    assert f'Env env-a: Terminate environment requested — follow <a href="/runs/{run.id}/">run {run.id}</a>' in html


def test_terminate_without_a_runnable_delete_action_is_refused(client, world):
    dev_environment(world["dev"], "env-a")
    action_permissions_update(actor=SYSTEM, action=world["actions"]["terminate"], data={"execute": {"roles": []}})
    client.force_login(world["dev"])
    response = client.post("/environments/terminate", {"blueprint": "devEnvironment", "entity": "env-a"})
    assert response.status_code == 403
    assert not Run.objects.filter(action__identifier="terminate_dev_env").exists()


def test_admin_extends_from_everyones_list_and_comes_back_to_it(client, world):
    dev_environment(world["dev"], "env-a")
    client.force_login(world["admin"])
    response = extend(client, "env-a", all="1")
    assert response.status_code == 302 and response["Location"] == "/environments/?all=1"


# --- queries --------------------------------------------------------------------------------------------------

def queries_for(client, user, query=""):
    client.force_login(user)
    client.get("/environments/" + query)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/environments/" + query).status_code == 200
    return len(queries)


def test_query_count_does_not_grow_with_environments(client, world):
    dev_environment(world["dev"], "env-0")
    dev_environment(world["other"], "env-x")
    mine, everyone = queries_for(client, world["dev"]), queries_for(client, world["admin"], "?all=1")
    for i in range(1, 15):
        dev_environment(world["dev"] if i % 2 else world["other"], f"env-{i}",
                        created_ago=timedelta(days=13) if i % 3 == 0 else None)
    assert queries_for(client, world["dev"]) == mine
    assert queries_for(client, world["admin"], "?all=1") == everyone
