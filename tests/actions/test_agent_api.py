"""The execution agent's routes: claim-pending, ack, response, the workflows claim and the organization PATCH
(PORT_API.md "Execution agent"), who may call them, visibility timeouts and two agents claiming at once."""
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from actions.choices import RunStatus
from actions.models import Action, Run
from actions.secrets import secret_set
from actions.services.agent import RUN_AGENT_ACKED, RUN_RESPONSE_RECORDED, agent_runs_claim
from audit.models import AuditEvent
from catalog.models import Blueprint
from portal.actor import Actor
from tests.factories import ApiClientFactory, BlueprintFactory, EntityFactory, RunFactory, UserFactory
from tests.support.agent import ACK, AGENT_HEADERS, CLAIM, ack, agent_action, agent_run, claim
from tests.support.api import api_for, bearer_api, token_of

pytestmark = pytest.mark.django_db
SECRET_VALUE = "tok-Very-Secret"


@pytest.fixture(autouse=True)
def agent_settings(settings):
    settings.WEBHOOK_SIGNING_SECRET = "whsec_test_key"
    return settings


@pytest.fixture
def deploy(requester):
    secret_set(actor=Actor.system(), name="DEPLOY_TOKEN", value=SECRET_VALUE)
    return agent_action()


# --- claim ---------------------------------------------------------------------------------------

def test_claim_hands_out_the_rendered_payload_with_secrets_and_stores_only_the_redacted_one(admin_api, deploy, requester):
    run = agent_run(deploy, requester)
    assert run.payload["body"]["token"] == "[redacted]"  # what the backend stored
    audits = AuditEvent.objects.count()
    before = timezone.now()

    response = claim(admin_api, visibilityTimeoutMs=30_000, invocationMethod="WEBHOOK")

    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["ok"] is True
    (claimed,) = data["runs"]
    assert claimed["id"] == run.id and claimed["status"] == "IN_PROGRESS"
    assert claimed["action"]["identifier"] == "deploy"
    assert claimed["payload"] == {
        "type": "WEBHOOK", "url": "http://deployer.internal/hooks/main", "agent": True, "synchronized": True,
        "method": "POST", "headers": {"X-Token": SECRET_VALUE},
        "body": {"branch": "main", "token": SECRET_VALUE, "runId": run.id},  # a null value drops its key
    }
    assert list(claimed["payload"]["body"]) == ["branch", "token", "runId"]
    run.refresh_from_db()
    assert run.agent_installation_id == "agent-a" and run.agent_acked_at is None
    assert before + timedelta(seconds=30) <= run.agent_claim_expires_at <= timezone.now() + timedelta(seconds=30)
    assert SECRET_VALUE not in str(run.payload)  # the secret was handed out, never stored
    assert AuditEvent.objects.count() == audits  # claims are not audited (see actions/services/agent.py)
    # Claimed: invisible to every agent until the claim expires.
    assert claim(admin_api, installation="agent-b").json() == {"ok": True, "runs": []}


def test_claim_takes_only_pending_agent_runs_oldest_first_up_to_the_limit(admin_api, deploy, requester):
    newest = agent_run(deploy, requester, branch="new")
    oldest = agent_run(deploy, requester, branch="old", minutes_ago=10)
    middle = agent_run(deploy, requester, branch="mid", minutes_ago=5)
    agent_run(deploy, requester, dispatch=False)  # the backend has not recorded its payload yet
    waiting = agent_run(deploy, requester)
    Run.objects.filter(pk=waiting.pk).update(status=RunStatus.WAITING_FOR_APPROVAL)
    ended = agent_run(deploy, requester)
    Run.objects.filter(pk=ended.pk).update(status=RunStatus.FAILURE)
    pushed = Action.objects.create(identifier="pushed", title="Pushed", trigger_type="self-service", operation="DAY-2",
                                   invocation_method={"type": "WEBHOOK", "url": "http://x.example/"})
    RunFactory(id="r_pushed", action=pushed, status=RunStatus.IN_PROGRESS, requested_by=requester,
                       dispatched_at=timezone.now(), payload={"type": "WEBHOOK"})

    first = claim(admin_api, limit=2).json()["runs"]
    rest = claim(admin_api, limit=10).json()["runs"]

    assert [run["id"] for run in first] == [oldest.id, middle.id]
    assert [run["id"] for run in rest] == [newest.id]


@pytest.mark.parametrize("body, message", [
    ({"installationId": "", "limit": 1}, "installationId: is required"),
    ({"limit": 1}, "installationId: is required"),
    ({"installationId": "a", "limit": 0}, "limit: must be between 1 and 100"),
    ({"installationId": "a", "limit": "5"}, "limit: must be an integer"),
    ({"installationId": "a", "limit": 1, "visibilityTimeoutMs": 10}, "visibilityTimeoutMs: must be between 1000 and 3600000"),
])
def test_claim_validates_its_body(admin_api, body, message):
    response = admin_api.post(CLAIM, body, format="json")

    assert response.status_code == 422
    assert response.json()["ok"] is False and response.json()["error"] == "invalid_request"
    assert response.json()["message"].startswith(message)


def test_claim_not_acked_within_its_visibility_timeout_returns_to_the_pool(admin_api, deploy, requester):
    run = agent_run(deploy, requester)
    assert [r["id"] for r in claim(admin_api, installation="agent-a").json()["runs"]] == [run.id]
    Run.objects.filter(pk=run.pk).update(agent_claim_expires_at=timezone.now() - timedelta(seconds=1))

    again = claim(admin_api, installation="agent-b").json()["runs"]

    assert [r["id"] for r in again] == [run.id]
    run.refresh_from_db()
    assert run.agent_installation_id == "agent-b" and run.agent_claim_expires_at > timezone.now()


def test_acked_runs_are_never_handed_out_again(admin_api, deploy, requester):
    run = agent_run(deploy, requester)
    claim(admin_api)
    assert ack(admin_api, run.id).json() == {"ok": True, "ackedCount": 1}
    Run.objects.filter(pk=run.pk).update(agent_claim_expires_at=timezone.now() - timedelta(hours=1))

    assert claim(admin_api, installation="agent-b").json() == {"ok": True, "runs": []}


def test_claim_query_count_does_not_grow_with_runs(admin_api, deploy, requester):
    BlueprintFactory(identifier="Service", title="Service",
                     schema={"properties": {"tier": {"type": "string"}}})
    blueprint = Blueprint.objects.get(identifier="Service")

    def runs_with_entities(count, prefix):
        for i in range(count):
            entity = EntityFactory(blueprint=blueprint, identifier=f"{prefix}{i}")
            agent_run(deploy, requester, entity=entity)

    def claim_counting():
        with CaptureQueriesContext(connection) as queries:
            runs = claim(admin_api, limit=100).json()["runs"]
        assert all(run["payload"]["body"]["entity"] == run["entity"]["identifier"] for run in runs)
        return len(runs), len(queries)

    runs_with_entities(1, "one")
    one = claim_counting()
    runs_with_entities(6, "many")
    many = claim_counting()

    assert one[0] == 1 and many[0] == 6
    assert many[1] == one[1]


# --- two agents at once --------------------------------------------------------------------------

def _agent_actor(email):
    user = UserFactory(email=email, admin=True)
    return Actor(user=user, origin="API", client_id=ApiClientFactory(user=user).client_id)


@pytest.mark.django_db(transaction=True)
def test_an_agent_never_claims_a_run_another_agent_is_claiming(requester):
    """Agent A's claim holds its rows locked while agent B claims: B skips them and takes the others."""
    deploy = agent_action()
    runs = [agent_run(deploy, requester, minutes_ago=10 - i) for i in range(5)]
    actor_a, actor_b = _agent_actor("agent-a@example.com"), _agent_actor("agent-b@example.com")
    a_locked, b_done = threading.Event(), threading.Event()
    result, errors = {}, []

    def agent_a():
        try:
            with transaction.atomic():
                result["a"] = agent_runs_claim(actor=actor_a, installation_id="a", limit=2)
                a_locked.set()
                assert b_done.wait(10)
        except Exception as exc:  # surfaced below
            errors.append(exc)
            a_locked.set()
        finally:
            connection.close()

    def agent_b():
        try:
            assert a_locked.wait(10)
            result["b"] = agent_runs_claim(actor=actor_b, installation_id="b", limit=10)
        except Exception as exc:
            errors.append(exc)
        finally:
            b_done.set()
            connection.close()

    threads = [threading.Thread(target=agent_a), threading.Thread(target=agent_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    assert not errors
    a_ids = [run.id for run, _ in result["a"]]
    b_ids = [run.id for run, _ in result["b"]]
    assert a_ids == [runs[0].id, runs[1].id]
    assert b_ids == [run.id for run in runs[2:]]
    owners = dict(Run.objects.values_list("id", "agent_installation_id"))
    assert [owners[run.id] for run in runs] == ["a", "a", "b", "b", "b"]


@pytest.mark.django_db(transaction=True)
def test_two_agents_claiming_at_the_same_moment_get_disjoint_runs(requester):
    deploy = agent_action()
    runs = [agent_run(deploy, requester) for _ in range(30)]
    actors = [_agent_actor(f"agent-{i}@example.com") for i in range(2)]
    start = threading.Barrier(2)
    claimed, errors = [[], []], []

    def agent(index):
        try:
            start.wait(10)
            while True:  # poll until the pool is empty, a few runs at a time
                batch = agent_runs_claim(actor=actors[index], installation_id=f"agent-{index}", limit=3)
                if not batch:
                    break
                claimed[index].extend(run.id for run, _ in batch)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert not errors
    assert not set(claimed[0]) & set(claimed[1])
    assert sorted(claimed[0] + claimed[1]) == sorted(run.id for run in runs)
    owners = dict(Run.objects.values_list("id", "agent_installation_id"))
    for index in range(2):
        assert all(owners[run_id] == f"agent-{index}" for run_id in claimed[index])


# --- ack -----------------------------------------------------------------------------------------

def test_ack_hands_the_run_over_and_is_audited(admin_api, admin_user, deploy, requester):
    run = agent_run(deploy, requester)
    claim(admin_api, installation="agent-a")
    audits = AuditEvent.objects.count()

    response = ack(admin_api, run.id)

    assert response.status_code == 200
    assert response.json() == {"ok": True, "ackedCount": 1}
    run.refresh_from_db()
    assert run.agent_acked_at is not None and run.status == RunStatus.IN_PROGRESS
    assert AuditEvent.objects.count() == audits + 1
    event = AuditEvent.objects.latest("id")
    assert event.verb == RUN_AGENT_ACKED and event.identifier == run.id and event.run_id == run.id
    assert event.actor == admin_user.email and event.resource_type == "run"
    assert event.diff["before"] == {"id": run.id, "agentInstallationId": "agent-a", "agentAckedAt": None}
    assert event.diff["after"] == {"id": run.id, "agentInstallationId": "agent-a",
                                   "agentAckedAt": run.agent_acked_at.isoformat()}


def test_ack_accepts_oceans_single_run_id(admin_api, deploy, requester):
    """Ocean's action processor acks one run as {"runId"} (port_ocean/clients/port/mixins/actions.py)."""
    run = agent_run(deploy, requester)
    claim(admin_api)

    response = admin_api.patch(ACK, {"runId": run.id}, format="json", **AGENT_HEADERS)
    again = admin_api.patch(ACK, {"runId": run.id}, format="json", **AGENT_HEADERS)
    bad = admin_api.patch(ACK, {"runId": 5}, format="json", **AGENT_HEADERS)

    assert response.status_code == 200 and response.json() == {"ok": True, "ackedCount": 1}
    run.refresh_from_db()
    assert run.agent_acked_at is not None
    assert again.status_code == 409 and again.json()["error"] == "already_acked"
    assert bad.status_code == 422 and bad.json()["message"] == "runId: must be a run id"


def test_a_second_ack_is_a_conflict(admin_api, deploy, requester):
    run = agent_run(deploy, requester)
    claim(admin_api)
    ack(admin_api, run.id)
    audits = AuditEvent.objects.count()

    response = ack(admin_api, run.id)

    assert response.status_code == 409
    assert response.json() == {"ok": False, "error": "already_acked", "message": f"runIds: run {run.id} was already acked."}
    assert AuditEvent.objects.count() == audits


def test_ack_of_some_already_acked_runs_acks_the_rest(admin_api, deploy, requester):
    first, second = agent_run(deploy, requester, minutes_ago=1), agent_run(deploy, requester)
    claim(admin_api)
    ack(admin_api, first.id)

    assert ack(admin_api, first.id, second.id).json() == {"ok": True, "ackedCount": 1}
    assert Run.objects.filter(agent_acked_at__isnull=False).count() == 2


def test_ack_refuses_unclaimed_and_unknown_runs(admin_api, deploy, requester):
    unclaimed = agent_run(deploy, requester)

    response = ack(admin_api, unclaimed.id)
    assert response.status_code == 409 and response.json()["error"] == "not_claimed"
    response = ack(admin_api, "r_nope")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    response = admin_api.patch(ACK, {"runIds": "r_1"}, format="json")
    assert response.status_code == 422 and response.json()["message"].startswith("runIds: must be a list")
    assert Run.objects.get(pk=unclaimed.pk).agent_acked_at is None


def test_a_run_that_ended_while_claimed_cannot_be_acked(admin_api, deploy, requester):
    run = agent_run(deploy, requester)
    claim(admin_api)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILURE)

    response = ack(admin_api, run.id)

    assert response.status_code == 409 and response.json()["error"] == "not_claimed"


# --- response ------------------------------------------------------------------------------------

def test_response_is_stored_on_the_run_and_audited(admin_api, admin_user, deploy, requester):
    run = agent_run(deploy, requester)
    claim(admin_api)
    ack(admin_api, run.id)
    audits = AuditEvent.objects.count()

    response = admin_api.patch(f"/v1/actions/runs/{run.id}/response", {"response": {"deployed": "main"}}, format="json")

    assert response.status_code == 200
    data = response.json()
    assert data["ok"] is True and data["run"]["id"] == run.id and data["run"]["response"] == {"deployed": "main"}
    assert data["run"]["status"] == "IN_PROGRESS"  # the agent reports the status with the run PATCH
    run.refresh_from_db()
    assert run.response == {"deployed": "main"} and run.payload["body"]["token"] == "[redacted]"
    assert AuditEvent.objects.count() == audits + 1
    event = AuditEvent.objects.latest("id")
    assert event.verb == RUN_RESPONSE_RECORDED and event.identifier == run.id and event.actor == admin_user.email
    assert event.diff == {"before": {"id": run.id, "response": None}, "after": {"id": run.id, "response": {"deployed": "main"}}}


def test_response_needs_a_response_and_a_run(admin_api, deploy, requester):
    run = agent_run(deploy, requester)

    response = admin_api.patch(f"/v1/actions/runs/{run.id}/response", {}, format="json")
    assert response.status_code == 422 and response.json()["message"] == "response: is required"
    response = admin_api.patch("/v1/actions/runs/r_nope/response", {"response": 1}, format="json")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


# --- workflows and organization ------------------------------------------------------------------

def test_workflows_claim_pending_answers_empty(admin_api):
    response = admin_api.post("/v1/workflows/runs/claim-pending", {"installationId": "a", "limit": 10}, format="json",
                              **AGENT_HEADERS)

    assert response.status_code == 200
    assert response.json() == {"ok": True, "nodeRuns": []}


def test_organization_patch_acknowledges_the_agent_settings(admin_api):
    response = admin_api.patch("/v1/organization", {"settings": {"portAgentStreamerName": "POLLING"}}, format="json")

    assert response.status_code == 200
    assert response.json() == {"ok": True, "organization": {"id": "portal", "name": "Portal", "featureFlags": [],
                                                            "isBlocked": False,
                                                            "settings": {"portAgentStreamerName": "POLLING"}}}
    response = admin_api.patch("/v1/organization", {"settings": "POLLING"}, format="json")
    assert response.status_code == 422 and response.json()["message"] == "settings: must be an object"


# --- who may call --------------------------------------------------------------------------------

AGENT_ROUTES = [
    ("post", CLAIM, {"installationId": "a", "limit": 1}),
    ("patch", ACK, {"runIds": ["r_0000"]}),
    ("patch", "/v1/actions/runs/r_0000/response", {"response": {"x": 1}}),
    ("post", "/v1/workflows/runs/claim-pending", {}),
    ("patch", "/v1/organization", {"settings": {}}),
]


def _human_token_api(user):
    return bearer_api(token_of(ApiClientFactory(user=user, is_machine=False)))


@pytest.mark.parametrize("method, path, body", AGENT_ROUTES)
def test_only_an_admins_machine_credential_may_call_agent_routes(method, path, body, admin_user, deploy, requester):
    run = agent_run(deploy, requester)
    Run.objects.filter(pk=run.pk).update(agent_claim_expires_at=timezone.now() + timedelta(minutes=1),
                                         agent_installation_id="a")
    member_machine = api_for(UserFactory(email="member@example.com"))
    admin_session = APIClient()
    admin_session.force_login(admin_user)
    callers = {"member machine token": member_machine, "admin personal token": _human_token_api(admin_user),
               "admin session": admin_session}

    for name, api in callers.items():
        response = getattr(api, method)(path, body, format="json")
        assert response.status_code == 403, name
        assert response.json()["ok"] is False and response.json()["error"] == "forbidden", name
    assert getattr(APIClient(), method)(path, body, format="json").status_code == 401
    run.refresh_from_db()
    assert run.agent_acked_at is None and run.response is None and run.agent_installation_id == "a"
