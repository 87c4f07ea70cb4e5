"""The GITLAB backend against a fake GitLab on 127.0.0.1 (pytest-httpserver): the pipeline trigger it
receives (encoded project path, token, ref, variables), the pipeline followed through a status sequence
with the read token, running without one, and refusals ending the run with GitLab's reason. Polls are
driven by hand from the tasks the backend schedules, never by sleeping."""
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from werkzeug.wrappers import Response

import actions.services.runs
from actions.backends import gitlab
from actions.choices import RunStatus
from actions.models import Action, Run
from actions.secrets import secret_set
from actions.tasks import run_dispatch_task
from portal.actor import Actor
from tests.factories import ActionFactory, RunFactory

pytestmark = pytest.mark.django_db
TRIGGER_PATH = "/api/v4/projects/platform/billing/trigger/pipeline"  # as the server decodes %2F
PIPELINE_PATH = "/api/v4/projects/platform/billing/pipelines/555"
WEB_URL = "https://gitlab.example/platform/billing/-/pipelines/555"


class FakeGitLab:
    def __init__(self, httpserver):
        self.requests = []
        self.trigger_answers = [(201, {"id": 555, "status": "created", "web_url": WEB_URL, "ref": "main"})]
        self.statuses = ["pending", "running", "success"]
        httpserver.expect_request(TRIGGER_PATH, method="POST").respond_with_handler(self.handle)
        httpserver.expect_request(PIPELINE_PATH, method="GET").respond_with_handler(self.handle)

    def handle(self, request):
        self.requests.append(request)
        seen = len(self.to(request.path))
        if request.path == TRIGGER_PATH:
            status, body = self.trigger_answers[min(seen, len(self.trigger_answers)) - 1]
        else:
            status, body = 200, {"id": 555, "status": self.statuses[min(seen, len(self.statuses)) - 1], "web_url": WEB_URL}
        return Response(json.dumps(body) if body is not None else "", status=status, content_type="application/json")

    def to(self, path):
        return [r for r in self.requests if r.path == path]


@pytest.fixture
def fake_gitlab(httpserver, settings):
    settings.GITLAB_URL = httpserver.url_for("/").rstrip("/")
    settings.GITLAB_TOKEN = "glpat-read"
    settings.CI_DISPATCH_MAX_ATTEMPTS = 3
    settings.CI_RETRY_BASE_SECONDS = 2
    settings.CI_POLL_BASE_SECONDS = 5
    settings.CI_POLL_MAX_SECONDS = 60
    return FakeGitLab(httpserver)


@pytest.fixture
def gitlab_scheduled(monkeypatch):
    queue = []

    names = {gitlab.gitlab_poll_task.name: "poll", gitlab.gitlab_trigger_task.name: "trigger"}

    def enqueue(task, args, countdown):
        queue.append((names[task.name], list(args), countdown))

    monkeypatch.setattr(gitlab, "outbox_enqueue", enqueue)
    monkeypatch.setattr(actions.services.runs, "outbox_enqueue", enqueue)  # dispatch retries (run_delivery_retry)
    return queue


def drain(queue, limit=20):
    countdowns = []
    while queue and len(countdowns) < limit:
        name, args, countdown = queue.pop(0)
        countdowns.append((name, countdown))
        (gitlab.gitlab_poll if name == "poll" else gitlab.gitlab_trigger_task)(*args)
    return countdowns


@pytest.fixture
def project_token(db):
    secret_set(actor=Actor.system(), name="GITLAB_TRIGGER_TOKEN_PLATFORM_BILLING", value="glptt-billing-trigger")


def make_run(requester, *, properties=None, **invocation):
    action = ActionFactory(
        identifier=f"release_{Action.objects.count()}", title="Release", trigger_type="self-service", operation="DAY-2",
        blueprint_identifier="service",
        trigger={"type": "self-service", "operation": "DAY-2", "blueprintIdentifier": "service"},
        invocation_method={"type": "GITLAB", "groupName": "platform", "projectName": "billing", **invocation})
    return RunFactory(
        id=f"r_gl{Run.objects.count():04d}", action=action, blueprint_identifier="service", status=RunStatus.IN_PROGRESS,
        requested_by=requester, origin="UI", properties=properties or {}, started_at=timezone.now(),
        timeout_at=timezone.now() + timedelta(hours=1))


def dispatch(run):
    run_dispatch_task(run.id)
    run.refresh_from_db()
    return run


def test_trigger_and_follow_the_pipeline_to_success(fake_gitlab, gitlab_scheduled, requester, project_token):
    run = make_run(requester, properties={"version": "3.1", "replicas": 2}, defaultRef="release",
                   pipelineVariables={"VERSION": "{{ .inputs.version }}", "REPLICAS": "{{ .inputs.replicas }}",
                                      "REQUESTER": "{{ .trigger.by.user.email }}"})
    run = dispatch(run)

    (trigger,) = fake_gitlab.to(TRIGGER_PATH)
    assert trigger.method == "POST"
    assert "/api/v4/projects/platform%2Fbilling/trigger/pipeline" in trigger.environ["REQUEST_URI"]
    assert trigger.form.to_dict() == {
        "token": "glptt-billing-trigger", "ref": "release", "variables[VERSION]": "3.1", "variables[REPLICAS]": "2",
        "variables[REQUESTER]": "dev@example.com", "variables[PORT_RUN_ID]": run.id}
    assert run.status == RunStatus.IN_PROGRESS
    assert run.external_run_id == "555" and run.links == [WEB_URL]
    assert "glptt-billing-trigger" not in json.dumps(run.payload)
    assert run.payload == {"type": "GITLAB", "project": "platform/billing", "ref": "release",
                           "variables": {"VERSION": "3.1", "REPLICAS": "2", "REQUESTER": "dev@example.com",
                                         "PORT_RUN_ID": run.id}}

    assert drain(gitlab_scheduled) == [("poll", 5.0), ("poll", 10.0), ("poll", 20.0)]
    polls = fake_gitlab.to(PIPELINE_PATH)
    assert len(polls) == 3 and all(p.headers["PRIVATE-TOKEN"] == "glpat-read" for p in polls)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCESS and run.status_label == "GitLab pipeline succeeded"
    assert [log.message for log in run.logs.all()] == ["Triggered pipeline 555 of platform/billing@release.",
                                                       "Pipeline 555 ended: success."]


@pytest.mark.parametrize("ending", ["failed", "canceled", "skipped"])
def test_a_pipeline_that_does_not_succeed_fails_the_run(fake_gitlab, gitlab_scheduled, requester, project_token, ending):
    fake_gitlab.statuses = ["running", ending]
    run = dispatch(make_run(requester))
    drain(gitlab_scheduled)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILURE and run.status_label == f"GitLab pipeline {ending}"


def test_without_a_read_token_the_pipeline_reports_back_itself(fake_gitlab, gitlab_scheduled, requester, settings):
    settings.GITLAB_TOKEN = ""
    secret_set(actor=Actor.system(), name="GITLAB_TRIGGER_TOKEN", value="glptt-shared")  # the fallback secret
    run = dispatch(make_run(requester))
    (trigger,) = fake_gitlab.to(TRIGGER_PATH)
    assert trigger.form["token"] == "glptt-shared" and trigger.form["ref"] == "main"
    assert run.status == RunStatus.IN_PROGRESS and run.external_run_id == "555" and gitlab_scheduled == []
    assert "GITLAB_TOKEN is not set" in run.logs.get().message
    assert fake_gitlab.to(PIPELINE_PATH) == []


def test_without_a_trigger_token_the_run_fails(fake_gitlab, gitlab_scheduled, requester):
    run = dispatch(make_run(requester))
    assert run.status == RunStatus.FAILURE
    assert run.status_label == ("GitLab: no trigger token: add a Secret named GITLAB_TRIGGER_TOKEN_PLATFORM_BILLING "
                                "(or GITLAB_TRIGGER_TOKEN)")
    assert fake_gitlab.requests == []


@pytest.mark.parametrize(("status", "answer", "label"), [
    (404, {"message": "404 Not Found"},
     "GitLab: project platform/billing not found, or the trigger token is not valid for it (404)"),
    (400, {"message": {"base": ["Reference not found"]}},
     "GitLab: the pipeline trigger for platform/billing@main was refused (400): base: Reference not found"),
    (401, {"message": "401 Unauthorized"}, "GitLab: the trigger token was refused (401): 401 Unauthorized"),
])
def test_refusals_end_the_run_with_the_reason(fake_gitlab, gitlab_scheduled, requester, project_token, status, answer, label):
    fake_gitlab.trigger_answers = [(status, answer)]
    run = dispatch(make_run(requester))
    assert len(fake_gitlab.to(TRIGGER_PATH)) == 1
    assert run.status == RunStatus.FAILURE and run.status_label == label
    assert [log.message for log in run.logs.all()] == [label]
    assert gitlab_scheduled == []


def test_server_errors_are_retried_then_fail(fake_gitlab, gitlab_scheduled, requester, project_token):
    fake_gitlab.trigger_answers = [(502, None)]
    run = dispatch(make_run(requester))
    assert drain(gitlab_scheduled) == [("trigger", 2.0), ("trigger", 4.0)]
    run.refresh_from_db()
    assert len(fake_gitlab.to(TRIGGER_PATH)) == 3 and run.attempts == 3
    assert run.status == RunStatus.FAILURE and run.status_label == "GitLab answered 502 after 3 attempts"


def test_a_server_error_then_success_triggers_once_more(fake_gitlab, gitlab_scheduled, requester, project_token):
    fake_gitlab.trigger_answers = [(503, None), (201, {"id": 555, "status": "created", "web_url": WEB_URL})]
    fake_gitlab.statuses = ["success"]
    run = dispatch(make_run(requester))
    assert drain(gitlab_scheduled) == [("trigger", 2.0), ("poll", 5.0)]
    run.refresh_from_db()
    assert len(fake_gitlab.to(TRIGGER_PATH)) == 2 and run.status == RunStatus.SUCCESS


def test_secrets_in_variables_are_sent_but_not_stored(fake_gitlab, gitlab_scheduled, requester, project_token):
    secret_set(actor=Actor.system(), name="DB_PASSWORD", value="hunter2-very-secret")
    run = dispatch(make_run(requester, pipelineVariables={"DB_PASSWORD": "{{ .secrets.DB_PASSWORD }}"}))
    assert fake_gitlab.to(TRIGGER_PATH)[0].form["variables[DB_PASSWORD]"] == "hunter2-very-secret"
    assert run.payload["variables"]["DB_PASSWORD"] == "[redacted]"


def test_literal_and_transformed_credentials_are_sent_but_not_stored(fake_gitlab, gitlab_scheduled, requester, project_token):
    secret_set(actor=Actor.system(), name="DB_PASSWORD", value="hunter2-very-secret")
    run = dispatch(make_run(requester, pipelineVariables={"API_TOKEN": "glpat-literal-123",
                                                          "ENCODED": "{{ .secrets.DB_PASSWORD | @base64 }}"}))
    form = fake_gitlab.to(TRIGGER_PATH)[0].form
    assert form["variables[API_TOKEN]"] == "glpat-literal-123" and form["variables[ENCODED]"] == "aHVudGVyMi12ZXJ5LXNlY3JldA=="
    assert run.payload["variables"] | {"PORT_RUN_ID": None} == {"API_TOKEN": "[redacted]", "ENCODED": "[redacted]",
                                                                  "PORT_RUN_ID": None}


def test_polling_a_pipeline_the_token_cannot_read_fails_the_run(httpserver, fake_gitlab, gitlab_scheduled, requester, project_token):
    run = dispatch(make_run(requester))
    httpserver.clear()
    httpserver.expect_request(PIPELINE_PATH).respond_with_json({"message": "403 Forbidden"}, status=403)
    drain(gitlab_scheduled)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILURE
    assert run.status_label == ("GitLab: pipeline 555 of platform/billing could not be read (403): 403 Forbidden; "
                                "check GITLAB_TOKEN")
