"""/runs/<id>/ (one run, its live part) and /runs/ (my runs)."""
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from actions.choices import RunStatus
from actions.models import Run
from actions.services.approvals import approval_decide
from actions.services.runs import run_link_entity, run_log_add, run_request, run_update
from catalog.models import Blueprint
from catalog.services.entities import entity_write_one
from portal.actor import Actor
from tests.factories import ActionFactory
from tests.support.pages import get
from tests.support.runs import actor_of, grant

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_dispatch_skipped")]


def deploy_run(users, **fields):
    action = ActionFactory(inputs={"branch": {"type": "string", "title": "Branch"},
                                 "target": {"type": "string", "format": "entity", "blueprint": "Service",
                                            "title": "Target"}}, **fields)
    grant("execute", action, users=[users["dev"]])
    grant("approve", action, teams=["managers"])
    return run_request(actor=actor_of(users["dev"]), action=action, properties={"branch": "main", "target": "checkout"},
                       entity_identifier="portal")


def create_run(users, requester="dev", identifier="create_env"):
    from actions.models import Action

    action = Action.objects.filter(identifier=identifier).first() or ActionFactory(identifier=identifier, operation="CREATE", blueprint="Env")
    grant("execute", action, users=[users[requester]])
    return run_request(actor=actor_of(users[requester]), action=action, properties={"branch": "b"})


def test_run_page_shows_every_section(client, users):
    run = deploy_run(users, required_approval={"type": "ANY"}, approval_timeout_seconds=7200)
    run.action.trigger["userInputs"]["order"] = ["target", "branch"]
    run.action.save()
    approval_decide(actor=actor_of(users["manager"]), run=run, decision="APPROVE", description="looks fine")
    dev = actor_of(users["dev"])
    run_log_add(actor=dev, run=run, message="Cloning main")
    run_log_add(actor=dev, run=run, message="Deploying <portal>")
    run_update(actor=dev, run=run, link=["https://ci.example.com/jobs/7", "javascript:alert(1)"], summary="All good",
               status_label="Deploying")

    page = get(client, users["dev"], f"/runs/{run.id}/")
    assert page.text("run-status-title") == "Status"
    assert '<span class="badge status-IN_PROGRESS">In Progress</span>' in page.html  # status in words, not colour only
    assert "Deploying" in page.text("run-live")
    assert page.attrs("run-live")["data-live-url"] == f"/runs/{run.id}/live"
    assert f'<a href="/runs/{run.id}/">Refresh</a>' in page.html  # without JavaScript
    # approval state and decisions
    assert "Approved" in page.text("run-live") and "manager@example.com" in page.text("run-live")
    assert "looks fine" in page.text("run-live")
    # links: only http(s) addresses become links
    assert '<a href="https://ci.example.com/jobs/7" rel="noopener noreferrer">' in page.html
    assert 'href="javascript:' not in page.html and "javascript:alert(1)" in page.html
    assert "All good" in page.text("run-live")
    # logs, escaped
    assert "Cloning main" in page.html and "Deploying &lt;portal&gt;" in page.html
    # details and inputs
    details = page.text("run-details-title")
    assert details == "Details"
    assert '<a href="/catalog/Service/portal/">portal</a>' in page.html
    assert "dev@example.com" in page.html and "<dt>Requested through</dt><dd>the API</dd>" in page.html
    inputs = page.html.split('id="run-inputs-title"')[1]
    assert re.findall(r"<dt>(\w+)</dt>", inputs) == ["Target", "Branch"]  # the action's userInputs.order
    assert re.search(r"<dt>Branch</dt>\s*<dd>main</dd>", inputs)
    assert re.search(r'<dt>Target</dt>\s*<dd><a href="/catalog/Service/checkout/">checkout</a></dd>', inputs)
    # audit trail: created, decided, started, logs, update
    assert page.text("run-audit-title") == "Audit trail"
    assert "actions.run.created" in page.html and "manager@example.com approved run" in page.html
    assert "WAITING_FOR_APPROVAL → IN_PROGRESS" in page.html


def test_run_page_links_the_created_entity(client, users):
    run = create_run(users)
    env = Blueprint.objects.get(identifier="Env")
    entity_write_one(actor=Actor.system(), blueprint=env, data={"identifier": "dev-one", "title": "Dev one"}, run_id=run.id)
    run_link_entity(run_id=run.id, blueprint_identifier="Env", entity_identifier="dev-one")
    run_update(actor=actor_of(users["dev"]), run=run, status="SUCCESS")
    page = get(client, users["dev"], f"/runs/{run.id}/")
    assert '<a href="/catalog/Env/dev-one/">Dev one</a>' in page.html
    assert '<span class="badge status-SUCCESS">Success</span>' in page.html


def test_live_part_follows_until_the_run_ends(client, users):
    run = deploy_run(users, required_approval=True)
    live = get(client, users["dev"], f"/runs/{run.id}/live")
    assert live.html.lstrip().startswith('<section id="run-live"')  # portal.js swaps in the first element
    assert live.attrs("run-live")["data-live-url"] == f"/runs/{run.id}/live"  # waiting for approval: follow
    assert "Waiting For Approval" in live.text("run-live") and "No decision yet." in live.html
    approval_decide(actor=actor_of(users["manager"]), run=run, decision="APPROVE")
    run_log_add(actor=actor_of(users["dev"]), run=run, message="step one")
    live = get(client, users["dev"], f"/runs/{run.id}/live")
    assert "data-live-url" in live.attrs("run-live") and "step one" in live.html
    run_log_add(actor=actor_of(users["dev"]), run=run, message="done", termination_status="SUCCESS")
    live = get(client, users["dev"], f"/runs/{run.id}/live")
    assert "data-live-url" not in live.attrs("run-live")  # terminal: nothing more to follow
    assert "Refresh" not in live.html and "done [SUCCESS]" in live.html


def test_a_run_the_user_may_not_see_is_404(client, users):
    run = create_run(users)  # a CREATE run has no entity: requester, approvers and admins see it
    get(client, users["other"], f"/runs/{run.id}/", status=404)
    get(client, users["other"], f"/runs/{run.id}/live", status=404)
    get(client, users["other"], "/runs/r_nope/", status=404)
    get(client, users["admin"], f"/runs/{run.id}/")


def test_an_approver_may_decide_from_the_run_page(client, users):
    run = deploy_run(users, required_approval=True)
    page = get(client, users["manager"], f"/runs/{run.id}/")
    assert page.text("run-decide-title") == "Your decision"
    assert page.all("input", type="hidden", name="next")[0]["value"] == f"/runs/{run.id}/"
    mine = get(client, users["dev"], f"/runs/{run.id}/")  # the requester cannot approve their own run
    assert "run-decide-title" not in mine.by_id


def test_my_runs_lists_mine_newest_first_with_pages(client, users):
    first, second, third = (create_run(users) for _ in range(3))
    create_run(users, requester="pay")
    page = get(client, users["dev"], "/runs/?limit=2")
    ids = re.findall(r'<a href="/runs/(r_[0-9a-f]+)/">', page.html)
    assert ids == [third.id, second.id]
    older = [a["href"] for a in page.all("a") if a.get("href", "").startswith("/runs/?") and "before=" in a["href"]]
    assert len(older) == 1
    page = get(client, users["dev"], older[0].replace("&amp;", "&"))
    assert re.findall(r'<a href="/runs/(r_[0-9a-f]+)/">', page.html) == [first.id]
    assert '<span class="badge status-IN_PROGRESS">In Progress</span>' in page.html
    run_update(actor=actor_of(users["dev"]), run=first, status="FAILURE")
    page = get(client, users["dev"], "/runs/?status=FAILURE")
    assert re.findall(r'<a href="/runs/(r_[0-9a-f]+)/">', page.html) == [first.id]
    client.force_login(users["dev"])
    assert client.get("/runs/?before=garbage").status_code == 400
    assert client.get("/runs/?status=NOPE").status_code == 400


def test_my_runs_query_count_is_constant(client, users):
    def count():
        client.force_login(users["dev"])
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/runs/")
        assert response.status_code == 200
        return len(queries), response.content.decode().count('class="badge status-')

    deploy_run(users)
    one = count()
    for _ in range(19):
        run_request(actor=actor_of(users["dev"]), action=Run.objects.first().action, properties={"branch": "x"},
                    entity_identifier="portal")
    many = count()
    assert (one[1], many[1]) == (1, 20)
    assert one[0] == many[0]


def test_run_page_query_count_does_not_grow_with_its_logs(client, users):
    def count(run):
        client.force_login(users["dev"])
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/runs/{run.id}/").status_code == 200
        return len(queries)

    small = deploy_run(users, required_approval={"type": "ALL"})
    big = run_request(actor=actor_of(users["dev"]), action=small.action, properties={}, entity_identifier="portal")
    for run, lines in ((small, 1), (big, 15)):
        for approver in ("manager", "manager2"):  # ALL: two decisions each
            approval_decide(actor=actor_of(users[approver]), run=run, decision="APPROVE")
        for i in range(lines):
            run_log_add(actor=actor_of(users["dev"]), run=run, message=f"line {i}")
    assert {r.status for r in Run.objects.all()} == {RunStatus.IN_PROGRESS}
    assert count(small) == count(big)
