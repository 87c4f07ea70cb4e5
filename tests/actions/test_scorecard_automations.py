"""A scorecard level change is an entity update automations can act on: "Slack the team when a service drops below
Silver", against a fake Slack Web API on 127.0.0.1 — from an entity write and from a scorecard edit."""
import json

import pytest

from actions.models import Run
from catalog.models import Blueprint
from catalog.services.blueprints import blueprint_create
from catalog.services.entities import UPSERT, entity_write_one
from catalog.services.scorecards import scorecard_create, scorecard_update
from portal.actor import Actor
from tests.support.automations import automation

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()
TOKEN = "xoxb-test-token"
ORDER = '["Basic", "Bronze", "Silver", "Gold"]'
READINESS = {"identifier": "readiness", "title": "Production readiness", "rules": [
    {"identifier": "hasReadme", "title": "README", "level": "Bronze",
     "query": {"combinator": "and", "conditions": [{"property": "readme", "operator": "isNotEmpty"}]}},
    {"identifier": "hasOnCall", "title": "On-call", "level": "Silver",
     "query": {"combinator": "and", "conditions": [{"property": "onCall", "operator": "isNotEmpty"}]}},
]}


@pytest.fixture
def fake_slack(settings, httpserver):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.SLACK_BOT_TOKEN = TOKEN
    settings.SLACK_API_URL = httpserver.url_for("/api/")
    settings.SLACK_MAX_RETRIES = 0
    httpserver.expect_request("/api/chat.postMessage", method="POST").respond_with_json(
        {"ok": True, "channel": "C0PLATFORM", "ts": "1700000000.000100"})
    return httpserver


@pytest.fixture
def readiness_services(db):
    blueprint_create(actor=SYSTEM, data={"identifier": "service", "title": "Service", "schema": {"properties": {
        "readme": {"type": "string"}, "onCall": {"type": "string"}}}})
    blueprint = Blueprint.objects.get(identifier="service")
    scorecard_create(actor=SYSTEM, blueprint=blueprint, data=READINESS)
    automation("notify_drop", {"type": "ENTITY_UPDATED", "blueprintIdentifier": "service"}, condition={
        "type": "JQ", "combinator": "and", "expressions": [
            f".diff.before.scorecards.readiness.level as $level | {ORDER} | index($level) >= 2",
            f".diff.after.scorecards.readiness.level as $level | {ORDER} | index($level) < 2"]},
        invocation={"type": "SLACK", "channel": "#platform",
                    "text": "{{ .event.diff.after.identifier }} dropped to {{ .event.diff.after.scorecards.readiness.level }}"})
    return blueprint


def write(identifier, **properties):
    entity_write_one(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="service"), mode=UPSERT,
                     data={"identifier": identifier, "properties": properties})


def posted(httpserver):
    return [json.loads(request.get_data())["text"] for request, _ in httpserver.log
            if request.path == "/api/chat.postMessage"]


def test_dropping_below_silver_posts_to_slack_and_nothing_else_does(readiness_services, fake_slack, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        write("checkout", readme="https://docs/checkout", onCall="ops")  # created at Gold (no Gold rules): not an update
    with django_capture_on_commit_callbacks(execute=True):
        write("checkout", readme="https://docs/checkout", onCall="payments")  # still Gold
    assert posted(fake_slack) == []
    with django_capture_on_commit_callbacks(execute=True):
        write("checkout", readme="https://docs/checkout")  # on-call removed: Bronze
    assert posted(fake_slack) == ["checkout dropped to Bronze"]
    with django_capture_on_commit_callbacks(execute=True):
        write("checkout")  # Bronze to Basic: below Silver already, no new drop
    assert posted(fake_slack) == ["checkout dropped to Bronze"]
    (run,) = Run.objects.filter(action__identifier="notify_drop")
    assert run.trigger_event["diff"]["before"]["scorecards"]["readiness"]["level"] == "Gold"
    assert run.trigger_event["diff"]["after"]["scorecards"]["readiness"]["rules"][1] == {
        "identifier": "hasOnCall", "status": "FAILURE", "level": "Silver"}


def test_a_scorecard_edit_that_drops_services_notifies_for_each(readiness_services, fake_slack, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        write("checkout", readme="https://docs/checkout", onCall="ops")
        write("billing", readme="https://docs/billing", onCall="ops")
        write("search", readme="https://docs/search")
    stricter = {**READINESS, "rules": [*READINESS["rules"], {
        "identifier": "hasPager", "title": "Pager", "level": "Silver",
        "query": {"combinator": "and", "conditions": [{"property": "onCall", "operator": "=", "value": "pager"}]}}]}
    with django_capture_on_commit_callbacks(execute=True):
        scorecard_update(actor=SYSTEM, blueprint=readiness_services, identifier="readiness", data=stricter)
    assert sorted(posted(fake_slack)) == ["billing dropped to Bronze", "checkout dropped to Bronze"]
