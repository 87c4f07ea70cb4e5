"""The GITHUB backend against a fake GitHub on 127.0.0.1 (pytest-httpserver): the dispatch it receives
(method, path, headers, body), the GitHub App token exchange (the app JWT checked with the public key,
the installation token cached), finding and following the workflow run through a status sequence, and
refusals ending the run with GitHub's reason. Polls are driven by hand from the tasks the backend
schedules (their countdowns asserted), never by sleeping."""
import json
from datetime import datetime, timedelta, timezone as dt_timezone

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.cache import cache
from django.utils import timezone
from werkzeug.wrappers import Response

import actions.services.runs
from actions.backends import github
from actions.choices import RunStatus
from actions.models import Action, Run
from actions.tasks import run_dispatch_task
from audit.models import AuditEvent
from tests.factories import ActionFactory, BlueprintFactory, EntityFactory, RunFactory, UserFactory
from tests.support.api import api_for

pytestmark = pytest.mark.django_db
ORG, REPO, WORKFLOW = "acme", "shop", "deploy.yml"
RUNS_PATH = f"/repos/{ORG}/{REPO}/actions/workflows/{WORKFLOW}/runs"
DISPATCH_PATH = f"/repos/{ORG}/{REPO}/actions/workflows/{WORKFLOW}/dispatches"


def _iso(moment):
    return moment.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeGitHub:
    """Records every request; answers the dispatch, the repository, the workflow's run list and each run's
    status from a sequence (the last answer repeats)."""

    def __init__(self, httpserver):
        self.server = httpserver
        self.requests = []
        self.dispatch_answers = [(204, "")]
        self.listed = []  # workflow runs the list endpoint returns
        self.run_statuses = {}  # run id → [(status, conclusion), ...]
        self.installation_id = 77
        self.tokens_issued = 0
        self.token_expires_in = timedelta(hours=1)
        for path in (DISPATCH_PATH, RUNS_PATH, f"/repos/{ORG}/{REPO}", f"/repos/{ORG}/{REPO}/installation",
                     f"/app/installations/{self.installation_id}/access_tokens"):
            httpserver.expect_request(path).respond_with_handler(self.handle)
        for run_id in range(4000, 4010):
            httpserver.expect_request(f"/repos/{ORG}/{REPO}/actions/runs/{run_id}").respond_with_handler(self.handle)

    def handle(self, request):
        self.requests.append(request)
        path = request.path
        if path == DISPATCH_PATH:
            dispatches = [r for r in self.requests if r.path == DISPATCH_PATH]
            status, body = self.dispatch_answers[min(len(dispatches), len(self.dispatch_answers)) - 1]
            return Response(json.dumps(body) if body else "", status=status, content_type="application/json")
        if path == f"/repos/{ORG}/{REPO}":
            return self.json({"full_name": f"{ORG}/{REPO}", "default_branch": "trunk"})
        if path == RUNS_PATH:
            return self.json({"total_count": len(self.listed), "workflow_runs": self.listed})
        if path.endswith("/installation"):
            return self.json({"id": self.installation_id})
        if path.endswith("/access_tokens"):
            self.tokens_issued += 1
            expires = timezone.now() + self.token_expires_in
            return self.json({"token": f"ghs_installation_{self.tokens_issued}", "expires_at": _iso(expires)}, 201)
        run_id = int(path.rsplit("/", 1)[1])
        polled = [r for r in self.requests if r.path == path]
        sequence = self.run_statuses[run_id]
        status, conclusion = sequence[min(len(polled), len(sequence)) - 1]
        return self.json(self.workflow_run(run_id, status=status, conclusion=conclusion))

    @staticmethod
    def json(data, status=200):
        return Response(json.dumps(data), status=status, content_type="application/json")

    @staticmethod
    def workflow_run(run_id, *, status="queued", conclusion=None, title="Deploy", created=None):
        return {"id": run_id, "name": "Deploy", "display_title": title, "event": "workflow_dispatch",
                "status": status, "conclusion": conclusion, "html_url": f"https://github.example/{ORG}/{REPO}/actions/runs/{run_id}",
                "created_at": _iso(created or timezone.now())}

    def to(self, path, method=None):
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]


@pytest.fixture
def fake_github(httpserver, settings):
    settings.GITHUB_API_URL = httpserver.url_for("/").rstrip("/")
    settings.GITHUB_TOKEN = "ghp_portal_test"
    settings.GITHUB_APP_ID = ""
    settings.GITHUB_APP_PRIVATE_KEY = ""
    settings.CI_DISPATCH_MAX_ATTEMPTS = 3
    settings.CI_RETRY_BASE_SECONDS = 2
    settings.CI_POLL_BASE_SECONDS = 5
    settings.CI_POLL_MAX_SECONDS = 60
    return FakeGitHub(httpserver)


@pytest.fixture
def github_scheduled(monkeypatch):
    """The tasks the backend schedules, as (task name, args, countdown), instead of a broker."""
    queue = []

    names = {github.github_poll_task.name: "poll", github.github_dispatch_task.name: "dispatch"}

    def enqueue(task, args, countdown):
        queue.append((names[task.name], list(args), countdown))

    monkeypatch.setattr(github, "outbox_enqueue", enqueue)
    monkeypatch.setattr(actions.services.runs, "outbox_enqueue", enqueue)  # dispatch retries (run_delivery_retry)
    return queue


def drain(queue, limit=20):
    """Run scheduled tasks in order, as a worker would when their countdowns pass; returns the countdowns."""
    countdowns = []
    while queue and len(countdowns) < limit:
        name, args, countdown = queue.pop(0)
        countdowns.append((name, countdown))
        (github.github_poll if name == "poll" else github.github_dispatch_task)(*args)
    return countdowns


def make_run(requester, *, properties=None, **invocation):
    action = ActionFactory(
        identifier=f"deploy_{Action.objects.count()}", title="Deploy", trigger_type="self-service", operation="DAY-2",
        blueprint_identifier="service",
        trigger={"type": "self-service", "operation": "DAY-2", "blueprintIdentifier": "service"},
        invocation_method={"type": "GITHUB", "org": ORG, "repo": REPO, "workflow": WORKFLOW, **invocation})
    return RunFactory(
        id=f"r_gh{Run.objects.count():04d}", action=action, blueprint_identifier="service", status=RunStatus.IN_PROGRESS,
        requested_by=requester, origin="UI", properties=properties or {}, started_at=timezone.now(),
        timeout_at=timezone.now() + timedelta(hours=1), entity_identifier="checkout")


def dispatch(run):
    run_dispatch_task(run.id)
    run.refresh_from_db()
    return run


def test_dispatch_finds_and_follows_the_workflow_run_to_success(fake_github, github_scheduled, requester):
    run = make_run(requester, properties={"version": "1.2.3", "replicas": 3, "canary": True})
    fake_github.listed = [fake_github.workflow_run(4001, title=f"Deploy {run.id}")]
    fake_github.run_statuses[4001] = [("in_progress", None), ("in_progress", None), ("completed", "success")]
    run = dispatch(run)

    (request,) = fake_github.to(DISPATCH_PATH)
    assert request.method == "POST"
    assert request.headers["Authorization"] == "Bearer ghp_portal_test"
    assert request.headers["Accept"] == "application/vnd.github+json"
    assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
    body = json.loads(request.get_data())
    assert body == {
        "ref": "trunk",  # the repository's default branch
        "inputs": {"version": "1.2.3", "replicas": "3", "canary": "true",
                   "port_context": json.dumps({"runId": run.id, "blueprint": "service", "entity": "checkout"},
                                              separators=(",", ":"))},
        "return_run_details": True,
    }
    assert run.status == RunStatus.IN_PROGRESS and run.external_run_id == ""
    assert run.payload["inputs"] == body["inputs"] and run.payload["ref"] == "trunk"

    countdowns = drain(github_scheduled)
    run.refresh_from_db()
    assert countdowns == [("poll", 5.0), ("poll", 10.0), ("poll", 20.0), ("poll", 40.0)]
    (listing,) = fake_github.to(RUNS_PATH)
    assert listing.args["event"] == "workflow_dispatch" and listing.args["created"].startswith(">=")
    assert len(fake_github.to(f"/repos/{ORG}/{REPO}/actions/runs/4001")) == 3
    assert run.status == RunStatus.SUCCESS
    assert run.status_label == "GitHub workflow run succeeded"
    assert run.external_run_id == "4001"
    assert run.links == [f"https://github.example/{ORG}/{REPO}/actions/runs/4001"]
    assert [log.message for log in run.logs.all()] == [
        f"Dispatched workflow {WORKFLOW} on {ORG}/{REPO}@trunk.", "Workflow run 4001 completed: success."]
    ended = AuditEvent.objects.filter(run_id=run.id, verb="actions.run.updated").order_by("id").last()
    assert ended.actor_type == "system"
    assert ended.diff["before"]["status"] == "IN_PROGRESS" and ended.diff["after"]["status"] == "SUCCESS"


def test_failed_conclusion_ends_the_run_as_failure(fake_github, github_scheduled, requester):
    run = make_run(requester)
    fake_github.listed = [fake_github.workflow_run(4002, title=run.id)]
    fake_github.run_statuses[4002] = [("queued", None), ("in_progress", None), ("completed", "failure")]
    dispatch(run)
    drain(github_scheduled)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILURE
    assert run.status_label == "GitHub workflow run concluded: failure"
    assert run.external_run_id == "4002"


def test_workflow_inputs_are_rendered_and_port_context_kept_when_given(fake_github, github_scheduled, requester):
    run = make_run(requester, properties={"env": "prod"}, reportWorkflowStatus=False, workflowInputs={
        "environment": "{{ .inputs.env }}", "runner": "{{ .trigger.by.user.email }}", "dropped": "{{ null }}",
        "port_context": "{{ {runId: .run.id} | tojson }}"})
    run = dispatch(run)
    body = json.loads(fake_github.to(DISPATCH_PATH)[0].get_data())
    assert body == {"ref": "trunk", "inputs": {"environment": "prod", "runner": "dev@example.com",
                                               "port_context": json.dumps({"runId": run.id}, separators=(",", ":"))}}
    # reportWorkflowStatus false: the workflow reports the run's end itself.
    assert run.status == RunStatus.IN_PROGRESS and github_scheduled == []
    assert "reportWorkflowStatus is off" in run.logs.get().message


def test_run_details_from_the_dispatch_answer_link_the_run_at_once(fake_github, github_scheduled, requester):
    fake_github.dispatch_answers = [(200, {"workflow_run_id": 4003, "run_url": "https://api.example/runs/4003",
                                    "html_url": "https://github.example/acme/shop/actions/runs/4003"})]
    fake_github.run_statuses[4003] = [("completed", "success")]
    run = dispatch(make_run(requester))
    assert run.external_run_id == "4003" and run.links == ["https://github.example/acme/shop/actions/runs/4003"]
    drain(github_scheduled)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCESS and fake_github.to(RUNS_PATH) == []


def test_a_github_without_return_run_details_is_asked_again_without_it(fake_github, github_scheduled, requester):
    fake_github.dispatch_answers = [(422, {"message": "Invalid request.\n\n\"return_run_details\" is not a permitted key."}),
                             (204, "")]
    run = make_run(requester)
    fake_github.listed = [fake_github.workflow_run(4004, status="completed", conclusion="success", title=run.id)]
    dispatch(run)
    first, second = fake_github.to(DISPATCH_PATH)
    assert json.loads(first.get_data())["return_run_details"] is True
    assert "return_run_details" not in json.loads(second.get_data())
    drain(github_scheduled)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCESS and run.external_run_id == "4004"


def test_without_the_run_id_in_a_title_each_run_takes_the_oldest_unclaimed(fake_github, github_scheduled, requester):
    first, second = make_run(requester), make_run(requester)
    dispatch(first)
    dispatch(second)
    now = timezone.now()
    fake_github.listed = [fake_github.workflow_run(4006, created=now + timedelta(seconds=2)),
                   fake_github.workflow_run(4005, created=now + timedelta(seconds=1)),
                   fake_github.workflow_run(4000, created=now - timedelta(minutes=5))]  # before the dispatch: never
    fake_github.run_statuses.update({4005: [("in_progress", None)], 4006: [("in_progress", None)]})
    drain(github_scheduled, limit=2)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.external_run_id, second.external_run_id) == ("4005", "4006")


@pytest.mark.parametrize(("path", "status", "answer", "label"), [
    (DISPATCH_PATH, 404, {"message": "Not Found"}, f"GitHub: workflow {WORKFLOW} not found (404)"),
    (DISPATCH_PATH, 422, {"message": "Unexpected inputs provided: [\"colour\"]"},
     f"GitHub: workflow {WORKFLOW} refused the request (422): Unexpected inputs provided: [\"colour\"]"),
    (DISPATCH_PATH, 401, {"message": "Bad credentials"}, "GitHub: authentication failed (401): Bad credentials"),
    (f"/repos/{ORG}/{REPO}", 404, {"message": "Not Found"}, f"GitHub: repository {ORG}/{REPO} not found (404)"),
])
def test_refusals_end_the_run_with_the_reason(httpserver, fake_github, github_scheduled, requester, path, status, answer, label):
    httpserver.clear()  # this test's answers only
    received = []

    def refuse(request):
        received.append(request)
        return Response(json.dumps(answer), status=status, content_type="application/json")

    httpserver.expect_request(path).respond_with_handler(refuse)
    if path == DISPATCH_PATH:
        httpserver.expect_request(f"/repos/{ORG}/{REPO}").respond_with_json({"default_branch": "main"})
    run = dispatch(make_run(requester, properties={"colour": "blue"}))
    assert len(received) == 1
    assert run.status == RunStatus.FAILURE and run.status_label == label
    assert [log.message for log in run.logs.all()] == [label]
    assert github_scheduled == []


def test_server_errors_are_retried_with_backoff_then_fail(httpserver, fake_github, github_scheduled, requester):
    fake_github.dispatch_answers = [(502, "")]
    run = dispatch(make_run(requester))
    assert run.status == RunStatus.IN_PROGRESS
    assert drain(github_scheduled) == [("dispatch", 2.0), ("dispatch", 4.0)]
    run.refresh_from_db()
    assert len(fake_github.to(DISPATCH_PATH)) == 3 and run.attempts == 3
    assert run.status == RunStatus.FAILURE and run.status_label == "GitHub answered 502 after 3 attempts"


def test_a_server_error_then_success_dispatches_once_more(fake_github, github_scheduled, requester):
    fake_github.dispatch_answers = [(503, ""), (204, "")]
    run = dispatch(make_run(requester, reportWorkflowStatus=False))
    assert drain(github_scheduled) == [("dispatch", 2.0)]
    run.refresh_from_db()
    assert len(fake_github.to(DISPATCH_PATH)) == 2 and run.status == RunStatus.IN_PROGRESS


def test_not_configured_fails_the_run(fake_github, github_scheduled, requester, settings):
    settings.GITHUB_TOKEN = ""
    run = dispatch(make_run(requester))
    assert run.status == RunStatus.FAILURE and run.status_label.startswith("GitHub is not configured")
    assert fake_github.requests == []


def test_polling_stops_once_the_run_timed_out(fake_github, github_scheduled, requester):
    run = make_run(requester)
    fake_github.listed = [fake_github.workflow_run(4007, title=run.id)]
    fake_github.run_statuses[4007] = [("in_progress", None)]
    dispatch(run)
    Run.objects.filter(pk=run.pk).update(timeout_at=timezone.now() - timedelta(seconds=1))
    assert drain(github_scheduled) == [("poll", 5.0)]  # the poll that found the deadline passed schedules none
    assert fake_github.to(RUNS_PATH) == []


def test_poll_backoff_is_capped():
    assert [github.poll_delay(attempt) for attempt in range(1, 8)] == [5, 10, 20, 40, 60, 60, 60]


# --- GitHub App authentication --------------------------------------------------------------------

@pytest.fixture
def app_key(settings):
    # The token cache on a cache of these tests' own: the shared test Redis is flushed by every concurrent
    # test session (tests/conftest.py), which would drop the cached token between two dispatches.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "github-app"}}
    cache.clear()  # locmem keeps its entries per LOCATION across tests
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    settings.GITHUB_TOKEN = ""
    settings.GITHUB_APP_ID = "123456"
    settings.GITHUB_APP_PRIVATE_KEY = pem.strip().replace("\n", "\\n")  # as an env file holds it
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_github_app_token_exchange_and_cache(fake_github, github_scheduled, requester, app_key):
    run = dispatch(make_run(requester, reportWorkflowStatus=False))
    (lookup,) = fake_github.to(f"/repos/{ORG}/{REPO}/installation", "GET")
    (exchange,) = fake_github.to("/app/installations/77/access_tokens", "POST")
    for request in (lookup, exchange):
        scheme, token = request.headers["Authorization"].split(" ")
        claims = jwt.decode(token, app_key, algorithms=["RS256"])  # signed with the app's key
        assert scheme == "Bearer" and claims["iss"] == "123456"
        assert claims["exp"] - claims["iat"] <= 600 and claims["iat"] <= datetime.now().timestamp()
    (sent,) = fake_github.to(DISPATCH_PATH)
    assert sent.headers["Authorization"] == "Bearer ghs_installation_1"
    assert run.status == RunStatus.IN_PROGRESS

    dispatch(make_run(requester, reportWorkflowStatus=False))
    assert len(fake_github.to(DISPATCH_PATH)) == 2
    assert fake_github.to(DISPATCH_PATH)[1].headers["Authorization"] == "Bearer ghs_installation_1"
    assert fake_github.tokens_issued == 1 and len(fake_github.to(f"/repos/{ORG}/{REPO}/installation")) == 1  # cached


def test_github_app_token_close_to_expiry_is_exchanged_again(fake_github, github_scheduled, requester, app_key):
    fake_github.token_expires_in = timedelta(minutes=4)  # inside the 5-minute margin: not reused
    dispatch(make_run(requester, reportWorkflowStatus=False))
    dispatch(make_run(requester, reportWorkflowStatus=False))
    assert fake_github.tokens_issued == 2
    assert [r.headers["Authorization"] for r in fake_github.to(DISPATCH_PATH)] == ["Bearer ghs_installation_1",
                                                                           "Bearer ghs_installation_2"]


def test_github_app_not_installed_fails_the_run(httpserver, fake_github, github_scheduled, requester, app_key):
    httpserver.clear()
    httpserver.expect_request(f"/repos/{ORG}/{REPO}/installation").respond_with_json({"message": "Not Found"}, status=404)
    run = dispatch(make_run(requester))
    assert run.status == RunStatus.FAILURE
    assert run.status_label == f"GitHub: the GitHub App is not installed on {ORG}/{REPO} (404)"


def test_an_unusable_private_key_fails_the_run(fake_github, github_scheduled, requester, settings):
    settings.GITHUB_TOKEN = ""
    settings.GITHUB_APP_ID = "1"
    settings.GITHUB_APP_PRIVATE_KEY = "not a key"
    run = dispatch(make_run(requester))
    assert run.status == RunStatus.FAILURE and "GITHUB_APP_PRIVATE_KEY" in run.status_label


# --- "Done when": Deploy through the API ends from the workflow's conclusion ----------------------

def test_deploy_through_the_api_ends_success_from_the_workflow_conclusion(fake_github, settings, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # scheduled polls run at once (countdowns are ignored)
    platform = api_for(UserFactory(email="platform@example.com", admin=True))
    developer = api_for(UserFactory(email="dev@example.com", teams=["Checkout"]))
    BlueprintFactory(identifier="service", title="Service", schema={"properties": {}})
    EntityFactory(blueprint="service", identifier="checkout", title="Checkout")
    created = platform.post("/v1/actions", {
        "identifier": "deploy", "title": "Deploy",
        "trigger": {"type": "self-service", "operation": "DAY-2", "blueprintIdentifier": "service",
                    "userInputs": {"properties": {"version": {"type": "string"}}, "required": ["version"]}},
        "invocationMethod": {"type": "GITHUB", "org": ORG, "repo": REPO, "workflow": WORKFLOW,
                             "workflowInputs": {"version": "{{ .inputs.version }}", "service": "{{ .entity.identifier }}"}},
    }, format="json")
    assert created.status_code == 201, created.json()
    assert platform.patch("/v1/actions/deploy/permissions", {"execute": {"teams": ["Checkout"]}},
                          format="json").status_code == 200
    fake_github.dispatch_answers = [(200, {"workflow_run_id": 4008, "html_url": "https://github.example/acme/shop/actions/runs/4008"})]
    fake_github.run_statuses[4008] = [("queued", None), ("in_progress", None), ("completed", "success")]

    with django_capture_on_commit_callbacks(execute=True):
        requested = developer.post("/v1/actions/deploy/runs", {"entity": "checkout", "properties": {"version": "2.0.0"}},
                                   format="json")
    assert requested.status_code == 202, requested.json()
    run_id = requested.json()["run"]["id"]
    sent = json.loads(fake_github.to(DISPATCH_PATH)[0].get_data())
    assert sent["inputs"]["version"] == "2.0.0" and sent["inputs"]["service"] == "checkout"
    assert json.loads(sent["inputs"]["port_context"])["runId"] == run_id
    assert len(fake_github.to(f"/repos/{ORG}/{REPO}/actions/runs/4008")) == 3

    shown = developer.get(f"/v1/actions/runs/{run_id}")
    assert shown.status_code == 200
    run = shown.json()["run"]
    assert shown.json()["ok"] is True
    assert run["status"] == "SUCCESS" and run["statusLabel"] == "GitHub workflow run succeeded"
    assert run["externalRunId"] == "4008" and run["link"] == ["https://github.example/acme/shop/actions/runs/4008"]
