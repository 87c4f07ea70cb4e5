"""/locks/: every service × environment with its lock, and lock/unlock through runs of the lock actions."""
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from actions.choices import RunOrigin, RunStatus
from actions.models import Action, Run
from actions.services.actions import action_permissions_update
from catalog.models import Entity, Team
from catalog.services.permissions import blueprint_permissions_update
from portal.actor import Actor
from tests.factories import UserFactory
from tests.support.locks import deploy_catalog, lock, lock_actions_install, running_service

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()


@pytest.fixture
def locks_world(db):
    blueprints = deploy_catalog()
    actions = lock_actions_install()
    running_service("CartService", "production", version="2.4.1")
    running_service("CartService", "staging", version="2.5.0-rc1")
    running_service("PaymentService", "production", version="9.0.0")
    return {"blueprints": blueprints, "actions": actions, "dev": UserFactory(email="dev@example.com")}


def page(client, user):
    client.force_login(user)
    return client.get("/locks/")


def text(response):
    return re.sub(r"\s+", " ", response.content.decode())


# --- the board ------------------------------------------------------------------------------------------------

def test_rows_are_services_and_columns_environments_in_order(client, locks_world):
    response = page(client, locks_world["dev"])
    assert response.status_code == 200
    html = text(response)
    headers = re.findall(r'<th scope="col"><a href="/deployments/environments/(\w+)/">', html)
    assert headers == ["production", "staging", "development"]
    rows = re.findall(r'<th scope="row"><a href="/deployments/services/(\w+)/">', html)
    assert rows == ["CartService", "PaymentService"]
    assert "2.4.1" in html and "2.5.0-rc1" in html and "9.0.0" in html
    assert html.count("Not deployed") == 3  # Cart in development, Payment in staging and development


def test_a_locked_service_shows_badge_reason_by_and_until_and_offers_unlock(client, locks_world):
    until = (timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    lock("runningService", "CartService-production", reason="incident 42", until=until)
    html = text(page(client, locks_world["dev"]))
    cell = re.search(r'CartService</a></th>(.*?)</td>', html).group(1)
    assert "Locked" in cell and "incident 42" in cell and "by sre@example.com" in cell and "until" in cell
    assert 'aria-label="Unlock CartService in production"' in html
    assert 'aria-label="Lock CartService in production"' not in html
    assert 'aria-label="Lock CartService in staging"' in html


def test_environment_row_shows_the_environment_lock(client, locks_world):
    lock("environment", "staging", reason="demo day")
    html = text(page(client, locks_world["dev"]))
    whole = re.search(r'<th scope="row">Whole environment</th>(.*?)</tr>', html).group(1)
    assert "demo day" in whole
    assert 'aria-label="Unlock environment Staging"' in whole and 'aria-label="Lock environment Production"' in whole
    assert "Environment locked too" in html  # CartService in staging


def test_no_buttons_for_who_may_not_run_the_actions(client, locks_world):
    for action in locks_world["actions"].values():
        action_permissions_update(actor=SYSTEM, action=action, data={"execute": {"roles": []}})
    html = text(page(client, locks_world["dev"]))
    assert "2.4.1" in html  # still sees the board
    assert "<form" not in html.split("<main", 1)[1].split("</main>")[0].replace('action="/logout/"', "")


def test_only_running_services_the_user_may_read_are_shown(client, locks_world):
    blueprint_permissions_update(actor=SYSTEM, blueprint=locks_world["blueprints"]["runningService"],
                                 data={"entities": {"read": {"roles": [], "ownedByTeam": True}}})
    running_service("Ledger", "production", team="payments")
    payer = UserFactory(email="pay@example.com", teams=["payments"])
    assert "Ledger" not in text(page(client, locks_world["dev"]))
    assert "CartService" not in text(page(client, locks_world["dev"]))
    html = text(page(client, payer))
    assert "Ledger" in html and "CartService" not in html


# --- lock / unlock --------------------------------------------------------------------------------------------

def post(client, **data):
    return client.post("/locks/", data)


def test_lock_requests_a_run_of_lock_service_with_origin_ui_and_redirects_with_a_link(client, locks_world):
    client.force_login(locks_world["dev"])
    until = (timezone.now() + timedelta(days=1)).replace(second=0, microsecond=0)
    response = post(client, scope="service", op="lock", service="CartService", environment="production",
                    reason="release freeze", until=until.strftime("%Y-%m-%dT%H:%M"))
    assert response.status_code == 302 and response["Location"] == "/locks/"
    run = Run.objects.get()
    assert run.action.identifier == "lock_service" and run.entity_identifier == "CartService-production"
    assert run.origin == RunOrigin.UI and run.requested_by == locks_world["dev"]
    assert run.properties == {"reason": "release freeze", "until": until.strftime("%Y-%m-%dT%H:%M:00.000Z")}
    html = text(client.get("/locks/"))
    assert f'Lock of CartService in production requested: <a href="/runs/{run.id}/">run {run.id}</a> is in progress.' in html


def test_the_run_locks_the_service_when_dispatched(client, locks_world, django_capture_on_commit_callbacks, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    client.force_login(locks_world["dev"])
    with django_capture_on_commit_callbacks(execute=True):
        post(client, scope="service", op="lock", service="CartService", environment="production", reason="hotfix only")
    run = Run.objects.get()
    assert run.status == RunStatus.SUCCESS, run.status_label
    properties = Entity.objects.get(identifier="CartService-production").properties
    assert properties["locked"] is True and properties["lockReason"] == "hotfix only"
    assert properties["lockedBy"] == "dev@example.com"
    cell = re.search(r'CartService</a></th>(.*?)</td>', text(client.get("/locks/"))).group(1)
    assert "Locked" in cell and "hotfix only" in cell


def test_unlock_and_environment_locks_use_their_actions(client, locks_world):
    lock("environment", "staging")
    client.force_login(locks_world["dev"])
    post(client, scope="environment", op="unlock", environment="staging", reason="freeze over")
    post(client, scope="environment", op="lock", environment="production", reason="incident")
    runs = {r.action.identifier: r for r in Run.objects.select_related("action")}
    assert runs["unlock_environment"].entity_identifier == "staging"
    assert runs["unlock_environment"].properties == {"reason": "freeze over"}  # unlock has no `until`
    assert runs["lock_environment"].entity_identifier == "production"


def test_a_missing_reason_is_shown_at_the_reason_field_with_input_kept(client, locks_world):
    client.force_login(locks_world["dev"])
    response = post(client, scope="service", op="lock", service="PaymentService", environment="production",
                    reason="  ", until="2999-01-01T10:00")
    assert response.status_code == 422
    html = text(response)
    form = re.search(r'<details class="lock-form" open>(.*?)</details>', html).group(1)
    assert 'name="service" value="PaymentService"' in form
    assert 'id="lock-service-PaymentService-production-reason-error">is required</p>' in form
    assert 'value="2999-01-01T10:00"' in form  # the until typed is kept
    assert not Run.objects.exists()


def test_an_until_in_the_past_or_not_a_date_is_shown_at_its_field(client, locks_world):
    client.force_login(locks_world["dev"])
    for value, message in (("2001-01-01T10:00", "must be in the future"), ("tomorrow", "is not an ISO 8601 date or date-time")):
        response = post(client, scope="service", op="lock", service="CartService", environment="staging",
                        reason="x", until=value)
        assert response.status_code == 422
        form = re.search(r'<details class="lock-form" open>(.*?)</details>', text(response)).group(1)
        assert message in form and 'value="x"' in form
    assert not Run.objects.exists()


def test_a_refused_run_is_403_at_the_top(client, locks_world):
    action_permissions_update(actor=SYSTEM, action=locks_world["actions"]["lock_service"], data={"execute": {"roles": []}})
    client.force_login(locks_world["dev"])
    response = post(client, scope="service", op="lock", service="CartService", environment="production", reason="x")
    assert response.status_code == 403
    assert re.search(r'<div class="error" role="alert">You may not run action &#x27;lock_service&#x27;', text(response))
    assert not Run.objects.exists()


def test_an_unknown_target_is_shown_not_run(client, locks_world):
    client.force_login(locks_world["dev"])
    response = post(client, scope="service", op="lock", service="Nope", environment="production", reason="x")
    assert response.status_code == 422
    assert "entity: entity &#x27;Nope-production&#x27; of blueprint &#x27;runningService&#x27; was not found" in text(response)
    response = post(client, scope="planet", op="lock", environment="production", reason="x")
    assert response.status_code == 422 and "scope: name a service" in text(response)
    assert not Run.objects.exists()


def test_without_the_lock_actions_the_page_says_how_to_install_them(client, locks_world):
    Action.objects.filter(identifier__in=["lock_service", "unlock_service", "lock_environment", "unlock_environment"]).update(publish=False)
    html = text(page(client, locks_world["dev"]))
    assert "manage.py load_starter" in html and "<details" not in html


def test_get_needs_a_sign_in(client, locks_world):
    response = client.get("/locks/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


# --- queries --------------------------------------------------------------------------------------------------

def queries_for(client, user):
    client.force_login(user)
    client.get("/locks/")  # warm the content-type cache
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/locks/").status_code == 200
    return len(queries)


def test_query_count_does_not_grow_with_services(client, locks_world):
    UserFactory(email="platform@example.com", teams=["platform"])
    locks_world["dev"].groups.add(Team.objects.get(name="platform").group)
    few = queries_for(client, locks_world["dev"])
    for i in range(12):
        for environment in ("production", "staging", "development"):
            running_service(f"Service{i}", environment, team="platform" if i % 2 else None)
    lock("runningService", "Service3-staging")
    lock("environment", "development")
    assert queries_for(client, locks_world["dev"]) == few


def test_identifiers_with_slashes_link_and_lock(client, locks_world):
    running_service("payments/ledger", "production")
    html = text(page(client, locks_world["dev"]))
    assert 'href="/deployments/services/payments/ledger/"' in html
    assert client.get("/deployments/services/payments/ledger/").status_code == 200
    post(client, scope="service", op="lock", service="payments/ledger", environment="production", reason="x")
    assert Run.objects.get().entity_identifier == "payments/ledger-production"
