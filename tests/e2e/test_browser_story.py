"""Browser: issue 6's story on the starter portal (`load_starter`, as `make demo` installs it).

A developer spins up developer environments through the "Spin up a developer environment" form; the third,
beyond the quota of two, waits for approval. A manager approves it from the queue; the developer sees the run
succeed and the environment appear on /environments/ with its TTL, then locks a service on /locks/.

Everything runs as in the demo: the run's webhook goes to the built-in demo receiver that `live_server` serves,
which reports back over HTTP; Celery is eager; the lock's Slack message goes to a fake Slack on loopback.
"""
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from actions.choices import RunStatus
from actions.models import Action, Run
from actions.services.runs import run_request
from catalog.models import Entity, Timer
from portal.actor import Actor
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

RUN_URL = re.compile(r".*/runs/r_[0-9a-f]+/$")


def request_environment(page, live_server, branch):
    page.goto(f"{live_server.url}/actions/")
    page.get_by_role("link", name="Run Spin up a developer environment").click()
    page.wait_for_url("**/actions/create_dev_env/run")
    # the browser itself refuses a branch name the input's pattern (^[a-z0-9][a-z0-9-]{0,39}$) refuses
    page.get_by_label("Branch").fill("Not A Branch")
    assert page.eval_on_selector("#input-p-branch", "el => el.validity.patternMismatch") is True
    page.get_by_label("Branch").fill(branch)
    assert page.eval_on_selector("#input-p-branch", "el => el.checkValidity()") is True
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_url(RUN_URL)
    return page.url


def test_developer_manager_developer_story(live_server, browser, page, sign_in, screenshot, starter_portal):
    developer = UserFactory(email="developer@example.com", teams=["Checkout"])
    browser_errors = []  # script errors and console errors (an invalid `pattern` is one) on the developer's pages
    page.on("pageerror", lambda error: browser_errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and browser_errors.append(message.text))
    # --- the developer: the first environment needs no approval ----------------------------------------------
    sign_in(page, "developer@example.com")
    screenshot(page, "developer-home")
    request_environment(page, live_server, "feature-a")
    page.locator("#run-live .run-status").filter(has_text="Success").wait_for()
    assert page.get_by_role("link", name=re.compile("feature-a")).count() >= 1
    screenshot(page, "first-environment-ready")

    second = run_request(actor=Actor(user=developer, origin="API"), action=Action.objects.get(identifier="create_dev_env"),
                         properties={"branch": "feature-b"})
    assert Run.objects.get(pk=second.pk).status == RunStatus.SUCCESS

    # --- the third is beyond the quota of two: the form says so, and the run waits for a manager -------------
    page.goto(f"{live_server.url}/actions/create_dev_env/run")
    assert "You have 2, so this one will wait for an approval." in page.locator("main").inner_text()
    run_url = request_environment(page, live_server, "feature-c")
    status = page.locator("#run-live .run-status")
    assert status.inner_text().startswith("Waiting For Approval")
    assert "Beyond the quota" in page.locator("#run-live").inner_text()
    assert not Entity.objects.filter(identifier="feature-c-developer").exists()
    screenshot(page, "third-waits-for-approval")

    # --- the manager approves it from the queue, in another browser session ---------------------------------
    manager_context = browser.new_context(viewport={"width": 1366, "height": 860})
    try:
        manager = manager_context.new_page()
        sign_in(manager, "manager@example.com")
        screenshot(manager, "manager-home")
        manager.goto(f"{live_server.url}/approvals/")
        card = manager.locator("li.approval")
        assert card.count() == 1
        assert "developer@example.com" in card.inner_text() and "feature-c" in card.inner_text()
        assert "Beyond the quota" in card.inner_text()  # why it waits
        screenshot(manager, "approval-queue")
        card.get_by_role("button", name=re.compile("^Approve")).click()
        manager.wait_for_url("**/approvals/")
        assert "You approved run" in manager.locator(".messages").inner_text()
        assert manager.locator("li.approval").count() == 0
        screenshot(manager, "approval-queue-after")
    finally:
        manager_context.close()

    # --- the developer: the open run page follows the run to its end ----------------------------------------
    status.filter(has_text="Success").wait_for()
    assert "manager@example.com" in page.locator("#run-live").inner_text()
    screenshot(page, "third-succeeded")
    run = Run.objects.get(pk=run_url.rstrip("/").rsplit("/", 1)[1])
    assert run.status == RunStatus.SUCCESS and run.result_entity.identifier == "feature-c-developer"

    page.goto(f"{live_server.url}/environments/")
    row = page.locator("tr", has_text="feature-c-developer")
    assert re.search(r"4d 23h left", row.locator("time").first.inner_text())
    expires = Timer.objects.get(entity__identifier="feature-c-developer", property="ttl").expires_at
    assert abs(expires - (timezone.now() + timedelta(days=5))) < timedelta(minutes=5)
    assert page.locator("tbody tr").count() == 3
    screenshot(page, "my-environments")

    # --- and locks a service: the locks page shows it ------------------------------------------------------
    page.goto(f"{live_server.url}/locks/")
    screenshot(page, "locks")
    cell = page.locator("table.locks tbody tr", has=page.locator("th", has_text="Cart Service")).locator("td").first
    assert "Unlocked" in cell.inner_text()
    cell.locator("summary", has_text="Lock…").click()
    cell.get_by_label("Reason").fill("Payment provider migration")
    cell.get_by_role("button", name="Lock Cart Service in production").click()
    page.wait_for_url(f"{live_server.url}/locks/")
    cell = page.locator("table.locks tbody tr", has=page.locator("th", has_text="Cart Service")).locator("td").first
    assert "Locked" in cell.inner_text() and "Payment provider migration" in cell.inner_text()
    assert "by developer@example.com" in cell.inner_text()
    screenshot(page, "service-locked")
    assert Entity.objects.get(identifier="CartService-production").properties["locked"] is True
    assert browser_errors == []
    assert [m["channel"] for m in starter_portal.messages] == ["#platform"]
    assert "Payment provider migration" in starter_portal.messages[0]["text"]
