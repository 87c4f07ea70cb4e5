"""/: my entities, my environments, my recent runs, approvals waiting on me, locks in force."""
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from actions.choices import RunStatus
from actions.models import Run
from actions.services.actions import action_create, action_permissions_update
from catalog.models import Blueprint
from catalog.services.permissions import blueprint_permissions_update
from portal.actor import Actor
from tests.factories import BlueprintFactory, EntityFactory, RunFactory, UserFactory
from tests.support.environments import dev_environment, ttl_world
from tests.support.locks import deploy_catalog, lock, running_service

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()


@pytest.fixture
def home_world(db):
    deploy_catalog()
    actions = ttl_world()
    BlueprintFactory(identifier="Service", title="Service", schema={"properties": {}})
    approve = action_create(actor=SYSTEM, data={
        "identifier": "provision", "title": "Provision a database",
        "trigger": {"type": "self-service", "operation": "CREATE", "blueprintIdentifier": "Service",
                    "userInputs": {"properties": {}, "required": []}},
        "invocationMethod": {"type": "WEBHOOK", "url": "http://127.0.0.1:9/hook"}, "requiredApproval": True})
    users = {"dev": UserFactory(email="dev@example.com", teams=["platform"]), "manager": UserFactory(email="boss@example.com", teams=["Managers"]),
             "other": UserFactory(email="other@example.com", teams=["payments"])}
    action_permissions_update(actor=SYSTEM, action=approve, data={"execute": {"roles": ["Member"]},
                                                                  "approve": {"teams": ["Managers"]}})
    return {"actions": {**actions, "provision": approve}, **users}


def service(identifier, team):
    return EntityFactory(blueprint="Service", identifier=identifier, title=identifier.title(), team=[team])


def run_of(home_world, requester, *, status=RunStatus.SUCCESS, n=0):
    return RunFactory(id=f"r_home{requester.pk}_{n}_{status[:3]}", action=home_world["actions"]["provision"],
                              blueprint_identifier="Service", requested_by=requester, status=status)


def text(response):
    return re.sub(r"\s+", " ", response.content.decode())


def home(client, user):
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    return text(response)


def section(html, title):
    return re.search(rf'<h2 id="[\w-]+">{title}</h2>(.*?)</section>', html).group(1)


def test_every_section_has_an_empty_state(client, home_world):
    html = home(client, home_world["dev"])
    assert "No running environments." in section(html, "My environments")
    assert "Nothing waits on you." in section(html, "Approvals waiting on me")
    assert "No service or environment is locked." in section(html, "Locks in force")
    assert "You have not run any action yet." in section(html, "My recent runs")
    assert "You own no entities yet" in section(html, "My entities")


def test_my_entities_are_those_of_my_teams_or_created_by_me_newest_first(client, home_world):
    service("portal", "platform")
    service("ledger", "payments")
    EntityFactory(blueprint="Service", actor=Actor(user=UserFactory(email="root@example.com", admin=True)), identifier="by-root")
    service("gateway", "platform")
    mine = section(home(client, home_world["dev"]), "My entities")
    assert re.findall(r'href="/catalog/Service/([\w-]+)/"', mine) == ["gateway", "portal"]
    theirs = section(home(client, home_world["other"]), "My entities")
    assert re.findall(r'href="/catalog/Service/([\w-]+)/"', theirs) == ["ledger"]


def test_my_entities_only_lists_what_i_may_read(client, home_world):
    service("portal", "platform")
    blueprint_permissions_update(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="Service"),
                                 data={"entities": {"read": {"roles": []}}})
    assert "/catalog/Service/portal/" not in home(client, home_world["dev"])


def test_my_environments_with_countdowns(client, home_world):
    dev_environment(home_world["dev"], "env-mine", expires_in=timedelta(hours=5, minutes=10))
    dev_environment(home_world["other"], "env-theirs")
    environments = section(home(client, home_world["dev"]), "My environments")
    assert 'href="/catalog/devEnvironment/env-mine/">Env env-mine</a>' in environments and "env-theirs" not in environments
    assert re.search(r'<time data-countdown datetime="[^"]+Z">5h (9|10)m left</time>', environments)


def test_my_recent_runs_are_mine_newest_ten(client, home_world):
    for i in range(12):
        run_of(home_world, home_world["dev"], n=i)
    run_of(home_world, home_world["other"])
    runs = section(home(client, home_world["dev"]), "My recent runs")
    linked = re.findall(r'<a href="/runs/(r_\w+)/">', runs)
    assert len(linked) == 10 and all(r.startswith(f"r_home{home_world['dev'].pk}_") for r in linked)
    assert linked[0] == Run.objects.filter(requested_by=home_world["dev"]).order_by("-created_at", "-id")[0].id
    assert '<span class="badge status-SUCCESS">Success</span>' in runs


def test_approvals_waiting_on_me_count_and_first_five(client, home_world):
    for i in range(7):
        run_of(home_world, home_world["dev"], status=RunStatus.WAITING_FOR_APPROVAL, n=i)
    approvals = section(home(client, home_world["manager"]), "Approvals waiting on me")
    assert "<strong>7</strong> runs waiting for your decision." in approvals
    assert len(re.findall(r'<a href="/approvals/#run-r_\w+">Provision a database</a>', approvals)) == 5
    assert 'href="/approvals/"' in approvals
    # the requester does not approve their own runs
    assert "Nothing waits on you." in section(home(client, home_world["dev"]), "Approvals waiting on me")


def test_locks_in_force(client, home_world):
    running_service("CartService", "production")
    running_service("CartService", "staging")
    lock("runningService", "CartService-production", reason="incident 7")
    lock("environment", "staging", reason="demo")
    locks = section(home(client, home_world["dev"]), "Locks in force")
    assert locks.index("Environment <a href=\"/catalog/environment/staging/\"><strong>Staging</strong></a>") < locks.index(
        '<a href="/catalog/runningService/CartService-production/"><strong>CartService-production</strong></a>')
    assert "incident 7" in locks and "demo" in locks and "CartService-staging" not in locks


def test_locks_of_unreadable_entities_are_not_shown(client, home_world):
    running_service("CartService", "production")
    lock("runningService", "CartService-production", reason="secret")
    blueprint_permissions_update(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="runningService"),
                                 data={"entities": {"read": {"roles": []}}})
    assert "secret" not in home(client, home_world["dev"])


def test_home_needs_a_sign_in(client, home_world):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def queries_for(client, user):
    client.force_login(user)
    client.get("/")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    return len(queries)


def test_query_count_does_not_grow_with_rows(client, home_world):
    service("s-0", "platform")
    dev_environment(home_world["dev"], "env-0")
    run_of(home_world, home_world["dev"])
    run_of(home_world, home_world["other"], status=RunStatus.WAITING_FOR_APPROVAL)
    running_service("CartService", "production")
    lock("runningService", "CartService-production")
    home_world["dev"].groups.add(home_world["manager"].groups.get())  # dev decides too
    few = queries_for(client, home_world["dev"])
    for i in range(1, 15):
        service(f"s-{i}", "platform")
        dev_environment(home_world["dev"], f"env-{i}")
        run_of(home_world, home_world["dev"], n=i)
        run_of(home_world, home_world["other"], status=RunStatus.WAITING_FOR_APPROVAL, n=i)
        running_service(f"Svc{i}", "production")
        lock("runningService", f"Svc{i}-production")
    lock("environment", "staging")
    assert queries_for(client, home_world["dev"]) == few
