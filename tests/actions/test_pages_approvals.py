"""/approvals/: the queue of runs waiting on me, and POST /approvals/<run id>/decide."""
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from actions.choices import RunStatus
from actions.models import Approval, Run
from actions.services.approvals import approval_decide
from actions.services.runs import run_request
from audit.models import AuditEvent
from tests.factories import ActionFactory
from tests.support.pages import Page, get
from tests.support.runs import actor_of, grant

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_dispatch_skipped")]


@pytest.fixture
def approval_action(users):
    action = ActionFactory(inputs={"branch": {"type": "string", "title": "Branch"}}, required_approval=True,
                         approval_timeout_seconds=3 * 3600)
    grant("execute", action, users=[users["dev"], users["pay"]])
    grant("approve", action, teams=["managers"])
    return action


def request_run(users, approval_action, who="dev", branch="main", entity="portal"):
    return run_request(actor=actor_of(users[who]), action=approval_action, properties={"branch": branch}, entity_identifier=entity)


def queue_ids(page):
    return [a["id"].removeprefix("run-") for t, a in page.elements if t == "li" and a.get("id", "").startswith("run-")]


def test_queue_lists_waiting_runs_oldest_first_with_what_to_decide_on(client, users, approval_action):
    older = request_run(users, approval_action, branch="first")
    newer = request_run(users, approval_action, who="pay", branch="second", entity="checkout")
    Run.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(hours=1))
    page = get(client, users["manager"], "/approvals/")
    assert queue_ids(page) == [older.id, newer.id]
    card = page.text(f"run-{older.id}")
    assert "dev@example.com" in card and "Deploy" in card and "first" in card
    assert re.search(rf'<li class="card approval" id="run-{older.id}">\s*<h2><a href="/runs/{older.id}/">Deploy</a> '
                     r'<span class="muted">on</span> <a href="/catalog/Service/portal/">portal</a></h2>', page.html)
    left = re.findall(r"<time data-countdown datetime=\"[^\"]+\">([^<]*)</time>", page.html)
    assert len(left) == 2 and re.fullmatch(r"2h 5\dm left", left[0])  # the text without JavaScript; portal.js counts down
    reasons = page.all("input", name="reason")
    assert [r["id"] for r in reasons] == [f"reason-{older.id}", f"reason-{newer.id}"]
    buttons = re.findall(r'<button type="submit" name="decision" value="(APPROVE|DECLINE)"', page.html)
    assert buttons == ["APPROVE", "DECLINE", "APPROVE", "DECLINE"]
    # never one's own runs, nor runs of actions one does not approve
    assert queue_ids(get(client, users["dev"], "/approvals/")) == []
    assert queue_ids(get(client, users["other"], "/approvals/")) == []


def test_empty_states(client, users, approval_action):
    assert "Nothing is waiting on you." in get(client, users["manager"], "/approvals/").html
    assert "You do not approve any action" in get(client, users["other"], "/approvals/").html


def test_approve_with_a_reason(client, users, approval_action):
    run = request_run(users, approval_action)
    client.force_login(users["manager"])
    response = client.post(f"/approvals/{run.id}/decide", {"decision": "APPROVE", "reason": "ship it", "next": "/approvals/"})
    assert response.status_code == 302 and response["Location"] == "/approvals/"
    run.refresh_from_db()
    assert run.status == RunStatus.IN_PROGRESS and run.status_label == "Approved by manager@example.com"
    (decision,) = Approval.objects.filter(run=run)
    assert (decision.approver, decision.decision, decision.description) == (users["manager"], "APPROVE", "ship it")
    assert AuditEvent.objects.get(run_id=run.id, verb="actions.run.approval_decided").origin == "UI"
    page = Page(client.get("/approvals/").content.decode())
    assert f"You approved run {run.id} of Deploy requested by dev@example.com; it is now In Progress." in page.html
    assert queue_ids(page) == []
    recent = page.html.split('id="recent-title"')[1]
    assert f'<a href="/runs/{run.id}/">{run.id}</a>' in recent and "ship it" in recent and "Approved" in recent


def test_decline_from_the_run_page_returns_there(client, users, approval_action):
    run = request_run(users, approval_action)
    client.force_login(users["manager"])
    response = client.post(f"/approvals/{run.id}/decide", {"decision": "DECLINE", "reason": "", "next": f"/runs/{run.id}/"})
    assert response["Location"] == f"/runs/{run.id}/"
    run.refresh_from_db()
    assert run.status == RunStatus.DECLINED and run.status_label == "Declined by manager@example.com"
    page = Page(client.get(f"/runs/{run.id}/").content.decode())
    assert "Declined" in page.text("run-live") and "manager@example.com" in page.text("run-live")
    # an off-site `next` is not followed
    other = request_run(users, approval_action)
    response = client.post(f"/approvals/{other.id}/decide", {"decision": "DECLINE", "next": "https://evil.example/"})
    assert response["Location"] == "/approvals/"


def test_a_decision_someone_else_took_is_shown_not_overwritten(client, users, approval_action):
    run = request_run(users, approval_action)
    get(client, users["manager"], "/approvals/")  # manager opens the queue ...
    approval_decide(actor=actor_of(users["manager2"]), run=run, decision="DECLINE", description="not today")
    client.force_login(users["manager"])  # ... and clicks Approve after manager2 declined
    response = client.post(f"/approvals/{run.id}/decide", {"decision": "APPROVE", "reason": "fine"}, follow=True)
    run.refresh_from_db()
    assert run.status == RunStatus.DECLINED
    assert list(Approval.objects.filter(run=run).values_list("approver__email", "decision")) == [
        ("manager2@example.com", "DECLINE")]
    message = Page(response.content.decode()).html
    assert re.search(rf"Run {run.id} was already decided: manager2@example.com declined it on \d{{4}}-\d\d-\d\d "
                     r"\d\d:\d\d UTC \(“not today”\). It is now DECLINED. Your decision was not recorded.", message)


def test_a_refused_decision_stays_on_the_queue_with_the_reason_kept(client, users, approval_action):
    run = request_run(users, approval_action)
    grant("approve", approval_action, users=[users["pay"]])
    client.force_login(users["dev"])  # the requester: may see the run, may not decide it
    response = client.post(f"/approvals/{run.id}/decide", {"decision": "APPROVE", "reason": "mine"})
    assert response.status_code == 403
    assert "You cannot approve your own run." in response.content.decode()
    client.force_login(users["pay"])
    response = client.post(f"/approvals/{run.id}/decide", {"decision": "MAYBE", "reason": "hmm"})
    assert response.status_code == 422
    page = Page(response.content.decode())
    assert page.text(f"decide-error-{run.id}") == "status: must be APPROVE or DECLINE, got 'MAYBE'"
    assert page.attrs(f"reason-{run.id}")["value"] == "hmm"
    client.force_login(users["other"])  # sees the run (members read services), may not decide it
    response = client.post(f"/approvals/{run.id}/decide", {"decision": "APPROVE"})
    assert response.status_code == 403 and "You may not approve runs of action &#x27;deploy&#x27;." in response.content.decode()
    assert client.post("/approvals/r_nope/decide", {"decision": "APPROVE"}).status_code == 404
    assert Run.objects.get(pk=run.pk).status == RunStatus.WAITING_FOR_APPROVAL


def test_queue_query_count_is_constant(client, users, approval_action):
    def count():
        client.force_login(users["manager"])
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/approvals/")
        assert response.status_code == 200
        return len(queries), len(queue_ids(Page(response.content.decode())))

    decided = request_run(users, approval_action)
    approval_decide(actor=actor_of(users["manager"]), run=decided, decision="APPROVE")  # a "recently decided" row
    request_run(users, approval_action)
    one = count()
    for i in range(19):
        request_run(users, approval_action, who="pay" if i % 2 else "dev", entity="checkout" if i % 2 else "portal")
    many = count()
    assert (one[1], many[1]) == (1, 20)
    assert one[0] == many[0]
