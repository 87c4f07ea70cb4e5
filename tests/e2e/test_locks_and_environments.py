"""Browser: a developer locks a service with a reason from /locks/ and sees the lock once its run has completed,
and extends an environment on /environments/; the home page shows both. Screenshots of every page visited,
and one of /locks/ at a phone's width."""
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from actions.choices import RunStatus
from actions.models import Run
from catalog.models import Entity, Timer
from catalog.services.deployments import deployment_record
from portal.actor import Actor
from portal.datetimes import instant_text
from tests.factories import UserFactory
from tests.support.environments import dev_environment, ttl_world
from tests.support.locks import deploy_catalog, lock_actions_install, running_service

pytestmark = pytest.mark.django_db(transaction=True)


def service_cell(page, service, column):
    """The cell of `service`'s row under the environment column `column` (0: production)."""
    return page.locator("table.locks tbody tr", has=page.locator("th", has_text=service)).locator("td").nth(column)


def test_a_developer_locks_a_service_with_a_reason_and_sees_the_lock(live_server, page, sign_in, screenshot, eager):
    deploy_catalog()
    lock_actions_install()
    running_service("CartService", "production", version="2.4.1")
    running_service("CartService", "staging", version="2.5.0")
    running_service("PaymentService", "production", version="9.0.0")
    for version, status in (("2.4.2", "failure"), ("2.4.3", "success")):
        deployment_record(actor=Actor.system(), data={
            "service": "CartService", "environment": "production", "version": version, "commitSha": "9f8e7d6c5b",
            "jobUrl": "https://ci.example.com/jobs/7", "status": status,
            "commitTime": instant_text(timezone.now() - timedelta(hours=3))})
    UserFactory(email="dev@example.com")

    sign_in(page, "dev@example.com")
    page.goto(f"{live_server.url}/locks/")
    screenshot(page, "locks")
    cell = service_cell(page, "CartService", 0)
    assert "Unlocked" in cell.inner_text()

    cell.locator("summary", has_text="Lock…").click()
    cell.get_by_label("Reason").fill("Release freeze until the audit is done")
    screenshot(page, "lock-form-open")
    cell.get_by_role("button", name="Lock CartService in production").click()
    page.wait_for_url(f"{live_server.url}/locks/")
    screenshot(page, "locked")

    message = page.locator(".messages").inner_text()
    assert message.startswith("Lock of CartService in production requested: run ") and message.endswith(" is done.")
    run = Run.objects.get(action__identifier="lock_service")
    assert run.status == RunStatus.SUCCESS, run.status_label
    assert page.locator(".messages a", has_text=f"run {run.id}").get_attribute("href") == f"/runs/{run.id}/"
    cell = service_cell(page, "CartService", 0)
    text = cell.inner_text()
    assert "Locked" in text and "Release freeze until the audit is done" in text and "by dev@example.com" in text
    assert cell.locator("summary").inner_text() == "Unlock…"  # the form the cell now offers
    assert cell.get_by_role("button", name="Unlock CartService in production", include_hidden=True).count() == 1
    assert "Unlocked" in service_cell(page, "CartService", 1).inner_text()  # staging is untouched
    assert Entity.objects.get(identifier="CartService-production").properties["locked"] is True

    page.goto(f"{live_server.url}/deployments/")
    where = page.locator("section", has=page.get_by_role("heading", name="Where each service runs"))
    assert "Release freeze until the audit is done" in where.locator("tr", has_text="2.4.3").inner_text()
    assert page.locator("#dora-failure .value").inner_text() == "50%"
    screenshot(page, "deployments")

    page.goto(f"{live_server.url}/")
    locks = page.locator("section", has=page.get_by_role("heading", name="Locks in force"))
    assert "CartService-production" in locks.inner_text()
    screenshot(page, "home-with-lock")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/locks/")
    assert page.get_by_role("heading", name="Locks").is_visible()
    screenshot(page, "locks-phone")


def test_a_refused_lock_shows_the_error_at_the_reason_field_without_javascript(live_server, browser, sign_in, screenshot):
    """With JavaScript off, the form still posts and the server's message comes back at the field."""
    deploy_catalog()
    lock_actions_install()
    running_service("CartService", "production")
    UserFactory(email="dev@example.com")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1366, "height": 860})
    try:
        page = context.new_page()
        sign_in(page, "dev@example.com")
        page.goto(f"{live_server.url}/locks/")
        cell = service_cell(page, "CartService", 0)
        cell.locator("summary", has_text="Lock…").click()
        cell.get_by_label("Reason").fill("   ")  # not empty for the browser's `required`; blank for the server
        cell.get_by_role("button", name="Lock CartService in production").click()
        page.wait_for_load_state()
        screenshot(page, "reason-required")
        cell = service_cell(page, "CartService", 0)
        assert cell.locator("details[open] .error").inner_text() == "is required"
        assert not Run.objects.exists()
    finally:
        context.close()


def test_a_developer_extends_an_environment(live_server, page, sign_in, screenshot):
    ttl_world()
    dev = UserFactory(email="dev@example.com")
    entity = dev_environment(dev, "feature-checkout", expires_in=timedelta(days=2, hours=4))
    dev_environment(dev, "old-branch", expires_in=timedelta(hours=20), url=None)
    before = Timer.objects.get(entity=entity).expires_at

    sign_in(page, "dev@example.com")
    screenshot(page, "home")
    environments = page.locator("section", has=page.get_by_role("heading", name="My environments"))
    assert "Env feature-checkout" in environments.inner_text()

    page.goto(f"{live_server.url}/environments/")
    row = page.locator("tr", has=page.get_by_role("link", name="Env feature-checkout"))
    assert re.search(r"2d [34]h left", row.locator("time").inner_text())
    screenshot(page, "environments")

    row.get_by_role("button", name="Extend Env feature-checkout by 3d").click()
    page.wait_for_url(f"{live_server.url}/environments/")
    assert "Env feature-checkout: extended by 3d" in page.locator(".messages").inner_text()
    row = page.locator("tr", has=page.get_by_role("link", name="Env feature-checkout"))
    assert re.search(r"5d [34]h left", row.locator("time").inner_text())
    screenshot(page, "extended")
    assert Timer.objects.get(entity=entity).expires_at == before + timedelta(days=3)
