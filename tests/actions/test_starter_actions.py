"""Issue 5's starter actions, end to end through the API against the built-in demo receiver (which the portal
under test serves itself on `live_server`) and a fake Slack on loopback: developer environments with quota →
approval, TTL extension and termination; service and environment locks with Slack, audit and auto-unlock;
deploy off until GitHub is configured; cloud resources and temporary access behind approvals."""
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from actions.choices import RunStatus
from actions.models import Action, NotificationSettings, Run
from actions.services.timers import timers_sweep
from audit.models import AuditEvent
from catalog.models import Entity, Timer
from portal.datetimes import instant_text
from tests.factories import UserFactory
from tests.support.api import api_for
from tests.support.slack import FakeSlack

pytestmark = pytest.mark.django_db(transaction=True)

STARTER_ACTIONS = {"create_dev_env", "extend_ttl", "terminate_dev_env", "lock_service", "unlock_service",
                   "lock_environment", "unlock_environment", "deploy", "provision_cloud_resource",
                   "request_temporary_access"}
PLATFORM_CHANNEL = "#platform-locks"


@pytest.fixture
def portal(live_server, settings, httpserver):
    """The starter catalog and actions, the demo receiver on, runs done in-process, Slack faked."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.PORTAL_BASE_URL = live_server.url
    settings.DEMO_RECEIVER_ENABLED = True
    settings.DEMO_RECEIVER_DELAY_SECONDS = 0
    settings.GITHUB_TOKEN, settings.GITHUB_APP_ID = "", ""
    settings.SLACK_BOT_TOKEN = "xoxb-test"
    settings.SLACK_API_URL = httpserver.url_for("/api/")
    settings.SLACK_DEFAULT_CHANNEL = "#general"
    call_command("load_starter", stdout=open("/dev/null", "w"))
    NotificationSettings.objects.create(platform_channel=PLATFORM_CHANNEL)
    return FakeSlack(httpserver)


@pytest.fixture
def developer(portal):
    return api_for(UserFactory(email="dev@example.com", teams=["Checkout"]))


@pytest.fixture
def manager(portal):
    return api_for(UserFactory(email="boss@example.com", teams=["Managers"]))


def request_run(api, action, properties=None, entity=None, status=202):
    body = {"properties": properties or {}}
    if entity is not None:
        body["entity"] = entity
    response = api.post(f"/v1/actions/{action}/runs", body, format="json")
    assert response.status_code == status, response.json()
    return response.json()


def run_of(answer):
    return Run.objects.select_related("result_entity").get(pk=answer["run"]["id"])


def test_load_starter_installs_every_contracted_action_once():
    call_command("load_starter", stdout=open("/dev/null", "w"))
    identifiers = set(Action.objects.values_list("identifier", flat=True))
    assert STARTER_ACTIONS <= identifiers
    assert "extend_ttl_devEnvironment" not in identifiers  # the starter extend_ttl is the devEnvironment's one
    count = Action.objects.count()
    call_command("load_starter", stdout=open("/dev/null", "w"))
    assert Action.objects.count() == count
    lock = Action.objects.get(identifier="lock_service")
    assert (lock.operation, lock.blueprint_identifier, lock.invocation["type"]) == ("DAY-2", "runningService", "UPSERT_ENTITY")
    assert lock.trigger["userInputs"]["required"] == ["reason"]


def test_dev_environment_for_5_days_with_approval_beyond_the_quota(developer, manager):
    first = run_of(request_run(developer, "create_dev_env", {"branch": "feature-a"}))
    assert first.status == RunStatus.SUCCESS, first.status_label
    env = first.result_entity
    assert env.identifier == "feature-a-dev" and env.properties["owner"] == "dev@example.com"
    expires = Timer.objects.get(entity=env, property="ttl").expires_at
    assert abs(expires - (timezone.now() + timedelta(days=5))) < timedelta(minutes=1)
    assert [log.message for log in first.logs.all()][-1].startswith("Environment ready at https://feature-a-dev.")

    second = run_of(request_run(developer, "create_dev_env", {"branch": "feature-b"}))
    assert second.status == RunStatus.SUCCESS  # two live environments: still within the quota

    third = run_of(request_run(developer, "create_dev_env", {"branch": "feature-c"}))
    assert third.status == RunStatus.WAITING_FOR_APPROVAL
    assert third.status_label.startswith("Beyond the quota, so it needs an approval")
    assert not Entity.objects.filter(identifier="feature-c-dev").exists()
    decided = manager.patch(f"/v1/actions/runs/{third.id}/approval", {"status": "APPROVE"}, format="json")
    assert decided.status_code == 200, decided.json()
    third.refresh_from_db()
    assert third.status == RunStatus.SUCCESS and Entity.objects.filter(identifier="feature-c-dev").exists()


def test_extend_by_3_days_then_terminate(developer):
    env = run_of(request_run(developer, "create_dev_env", {"branch": "feature-x"})).result_entity
    before = Timer.objects.get(entity=env, property="ttl").expires_at
    extended = run_of(request_run(developer, "extend_ttl", entity=env.identifier))
    assert extended.status == RunStatus.SUCCESS, extended.status_label
    assert Timer.objects.get(entity=env, property="ttl").expires_at - before == timedelta(days=3)

    terminated = run_of(request_run(developer, "terminate_dev_env", entity=env.identifier))
    assert terminated.status == RunStatus.SUCCESS, terminated.status_label
    assert not Entity.objects.filter(pk=env.pk).exists()


def test_an_expired_dev_environment_is_torn_down_by_the_starter_automation(developer):
    env = run_of(request_run(developer, "create_dev_env", {"branch": "feature-old"})).result_entity
    Timer.objects.filter(entity=env).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert timers_sweep() == 1
    teardown = Run.objects.get(action__identifier="teardown_expired_dev_env")
    assert teardown.status == RunStatus.SUCCESS, teardown.status_label
    assert not Entity.objects.filter(pk=env.pk).exists()


def deploy(api, service, environment="production"):
    return api.post("/v1/deployments", {"service": service, "environment": environment, "version": "1.0.0",
                                        "commitSha": "abc123", "jobUrl": "https://ci.example.com/1"}, format="json")


def lock_audit_events(identifier):
    return list(AuditEvent.objects.filter(verb="catalog.entity.updated", identifier=identifier)
                .order_by("id"))


def test_locking_a_service_refuses_its_deploys_posts_once_to_slack_and_is_audited_once(portal, developer):
    ci = api_for(UserFactory(email="ci@example.com", admin=True))
    assert deploy(ci, "CartService").status_code == 201
    audited_before = len(lock_audit_events("CartService-production"))
    # unlock is offered only on what is locked (its trigger.condition)
    refused = request_run(developer, "unlock_service", {"reason": "x"}, entity="CartService-production", status=422)
    assert "does not match the condition" in refused["message"]
    until = instant_text(timezone.now() + timedelta(hours=2))

    locked = run_of(request_run(developer, "lock_service", {"reason": "Black Friday freeze", "until": until},
                                entity="CartService-production"))
    assert locked.status == RunStatus.SUCCESS, locked.status_label
    service = Entity.objects.get(identifier="CartService-production")
    assert service.properties["locked"] is True
    assert (service.properties["lockReason"], service.properties["lockedBy"]) == ("Black Friday freeze", "dev@example.com")
    assert service.properties["lockedUntil"] == until

    messages = portal.to(PLATFORM_CHANNEL)
    assert len(messages) == 1
    text = messages[0]["text"]
    assert "CartService-production" in text and "locked by dev@example.com" in text
    assert "Black Friday freeze" in text and until in text
    events = lock_audit_events("CartService-production")[audited_before:]
    assert len(events) == 1
    assert events[0].diff["before"]["properties"].get("locked") is False
    assert events[0].diff["after"]["properties"]["locked"] is True

    refused = deploy(ci, "CartService")
    assert refused.status_code == 423 and refused.json()["lock"]["reason"] == "Black Friday freeze"
    assert api_for(UserFactory(email="reader@example.com", admin=True)).get(
        "/v1/locks/CartService/production").status_code == 423

    unlocked = run_of(request_run(developer, "unlock_service", {"reason": "Freeze over"}, entity="CartService-production"))
    assert unlocked.status == RunStatus.SUCCESS
    service.refresh_from_db()
    assert service.properties["locked"] is False and "lockedUntil" not in service.properties
    assert not Timer.objects.filter(entity=service, property="lockedUntil").exists()
    assert len(portal.to(PLATFORM_CHANNEL)) == 2 and "unlocked by dev@example.com: Freeze over" in portal.to(PLATFORM_CHANNEL)[1]["text"]
    assert deploy(ci, "CartService").status_code == 201


def test_a_lock_with_an_unlock_time_is_lifted_by_the_timer(portal, developer):
    ci = api_for(UserFactory(email="ci@example.com", admin=True))
    assert deploy(ci, "CartService", "staging").status_code == 201
    request_run(developer, "lock_service", {"reason": "QA in progress", "until": instant_text(timezone.now() + timedelta(hours=1))},
                entity="CartService-staging")
    service = Entity.objects.get(identifier="CartService-staging")
    Timer.objects.filter(entity=service, property="lockedUntil").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert timers_sweep() == 1
    expiry = Run.objects.get(action__identifier="expire_service_lock")
    assert expiry.status == RunStatus.SUCCESS, expiry.status_label
    service.refresh_from_db()
    assert service.properties["locked"] is False
    assert service.properties["lockReason"] == "Lock expired (was: QA in progress)"
    assert "unlocked by portal" in portal.to(PLATFORM_CHANNEL)[-1]["text"]
    assert deploy(ci, "CartService", "staging").status_code == 201


def test_an_environment_lock_refuses_every_service(portal, developer):
    ci = api_for(UserFactory(email="ci@example.com", admin=True))
    locked = run_of(request_run(developer, "lock_environment", {"reason": "Incident 42"}, entity="production"))
    assert locked.status == RunStatus.SUCCESS, locked.status_label
    for service in ("CartService", "ProductsService"):
        refused = deploy(ci, service)
        assert refused.status_code == 423, refused.json()
        assert refused.json()["lock"] == {"scope": "environment", "reason": "Incident 42", "by": "dev@example.com",
                                          "at": Entity.objects.get(identifier="production").properties["lockedAt"]}
    assert deploy(ci, "CartService", "staging").status_code == 201  # other environments deploy on
    assert len(portal.to(PLATFORM_CHANNEL)) == 1 and "Environment *production* locked" in portal.to(PLATFORM_CHANNEL)[0]["text"]


def test_deploy_is_off_until_github_is_configured(portal, developer, settings):
    ci = api_for(UserFactory(email="ci@example.com", admin=True))
    assert deploy(ci, "CartService").status_code == 201
    refused = request_run(developer, "deploy", {"version": "1.2.3"}, entity="CartService-production", status=409)
    assert refused["error"] == "backend_not_configured"
    assert refused["message"].startswith("action: 'deploy' is off until its backend is set up. GitHub is not configured")
    assert not Run.objects.filter(action__identifier="deploy").exists()


def test_a_cloud_resource_waits_for_a_manager(developer, manager):
    answer = request_run(developer, "provision_cloud_resource", {
        "name": "orders-db", "kind": "database", "size": "small", "region": "eu-west-1",
        "justification": "Orders need their own database."})
    run = run_of(answer)
    assert run.status == RunStatus.WAITING_FOR_APPROVAL
    queue = manager.get("/v1/approvals").json()
    assert [item["id"] for item in queue["runs"]] == [run.id]
    manager.patch(f"/v1/actions/runs/{run.id}/approval", {"status": "APPROVE"}, format="json")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCESS, run.status_label
    resource = Entity.objects.get(blueprint__identifier="cloudResource", identifier="orders-db")
    assert resource.properties["status"] == "ready" and resource.properties["owner"] == "dev@example.com"


def test_temporary_access_is_approved_then_revoked_when_it_expires(developer, manager):
    run = run_of(request_run(developer, "request_temporary_access", {
        "resource": "orders-db", "level": "read", "ttl": "PT1H", "reason": "Debugging a stuck order."}))
    assert run.status == RunStatus.WAITING_FOR_APPROVAL
    manager.patch(f"/v1/actions/runs/{run.id}/approval", {"status": "APPROVE"}, format="json")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCESS, run.status_label
    grant = run.result_entity
    assert grant.properties["grantee"] == "dev@example.com"
    expires = Timer.objects.get(entity=grant, property="expiresAt").expires_at
    assert abs(expires - (timezone.now() + timedelta(hours=1))) < timedelta(minutes=1)

    Timer.objects.filter(entity=grant).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert timers_sweep() == 1
    revoke = Run.objects.get(action__identifier="revoke_expired_access")
    assert revoke.status == RunStatus.SUCCESS, revoke.status_label
    assert not Entity.objects.filter(pk=grant.pk).exists()


def test_the_demo_receiver_refuses_unsigned_webhooks_and_is_off_by_default(live_server, settings, client):
    settings.DEMO_RECEIVER_ENABLED = True
    unsigned = client.post("/demo/receiver/dev-env", {"runId": "r_1"}, content_type="application/json")
    assert unsigned.status_code == 401 and unsigned.json()["message"].startswith("x-port-signature")
    settings.DEMO_RECEIVER_ENABLED = False
    assert client.post("/demo/receiver/dev-env", {"runId": "r_1"}, content_type="application/json").status_code == 404
