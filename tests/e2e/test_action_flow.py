"""Browser: a developer requests a run through its form, a manager approves it from the queue, the run page shows it.

The action writes its entity with the UPSERT_ENTITY backend (Celery eager: the live server runs the task in its own
thread after the approval commits), so the run succeeds without any outside system.
"""
import re

import pytest

from actions.services.actions import action_create, action_permissions_update
from portal.actor import Actor
from tests.factories import BlueprintFactory, EntityFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

SANDBOX = {"identifier": "sandbox", "title": "Sandbox",
           "schema": {"properties": {"branch": {"type": "string", "title": "Branch"},
                                     "size": {"type": "string", "title": "Size"}}}}
SPIN_UP = {
    "identifier": "spin_up_sandbox", "title": "Spin up a sandbox", "description": "A short-lived sandbox of your branch.",
    "trigger": {"type": "self-service", "operation": "CREATE", "blueprintIdentifier": "sandbox", "userInputs": {
        "properties": {
            "name": {"type": "string", "title": "Name", "pattern": "^[a-z][a-z0-9]*$", "minLength": 3,
                     "description": "Lowercase letters and digits, at least 3."},
            "branch": {"type": "string", "title": "Branch", "default": "main"},
            "size": {"type": "string", "title": "Size", "enum": ["small", "large"],
                     "enumColors": {"small": "green", "large": "orange"}, "default": "small"},
            "values": {"type": "string", "title": "Helm values", "format": "yaml"},
        },
        "required": ["name"], "order": ["name", "branch", "size", "values"]}},
    "invocationMethod": {"type": "UPSERT_ENTITY", "blueprintIdentifier": "sandbox", "mapping": {
        "identifier": "{{ .inputs.name }}", "title": "Sandbox {{ .inputs.name }}",
        "properties": {"branch": "{{ .inputs.branch }}", "size": "{{ .inputs.size }}"}}},
    "requiredApproval": True,
    "approvalTimeout": "P1D",
}


@pytest.fixture
def story(db, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    system = Actor.system()
    BlueprintFactory(**SANDBOX)
    UserFactory(email="dev@example.com", teams=["platform"])
    UserFactory(email="manager@example.com", teams=["managers"])
    action = action_create(actor=system, data=SPIN_UP)
    action_permissions_update(actor=system, action=action, data={"execute": {"users": ["dev@example.com"]},
                                                                 "approve": {"teams": ["managers"]}})
    return action


def test_developer_requests_manager_approves_run_succeeds(live_server, browser, page, sign_in, screenshot, story):
    # --- the developer -------------------------------------------------------------------------------------
    sign_in(page, "dev@example.com")
    page.goto(f"{live_server.url}/actions/")
    screenshot(page, "actions")
    page.get_by_role("link", name="Run Spin up a sandbox").click()
    page.wait_for_url("**/actions/spin_up_sandbox/run")
    assert page.get_by_role("heading", level=1).inner_text() == "Spin up a sandbox"
    screenshot(page, "form")

    # the browser refuses what the HTML attributes describe, before anything is sent
    page.get_by_label("Name").fill("Bad Name")
    page.get_by_role("button", name="Run", exact=True).click()
    assert page.url.endswith("/actions/spin_up_sandbox/run")
    assert page.eval_on_selector("#input-p-name", "el => el.validity.patternMismatch") is True

    # what only the server can check comes back at the field, with the input kept
    page.get_by_label("Name").fill("mybox")
    page.get_by_label("Large").check()
    page.get_by_label("Helm values").fill("replicas: [1")
    page.get_by_role("button", name="Run", exact=True).click()
    error = page.locator("#input-p-values-error")
    error.wait_for()
    assert error.inner_text().startswith("properties.values: is not valid YAML")
    assert page.get_by_role("alert").first.inner_text() == "The run was not requested: correct the inputs marked below."
    assert page.get_by_label("Name").input_value() == "mybox" and page.get_by_label("Large").is_checked()
    screenshot(page, "form-error-at-the-field")

    page.get_by_label("Helm values").fill("replicas: 1\n")
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_url(re.compile(r".*/runs/r_[0-9a-f]+/$"))
    run_url = page.url
    assert "waits for approval" in page.locator(".messages").inner_text()
    assert page.locator("#run-live .run-status").inner_text().startswith("Waiting For Approval")
    assert page.locator("#run-live").get_attribute("data-live-url") is not None
    screenshot(page, "run-waiting")

    # the same page on a phone: nothing wider than the screen
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "run-waiting-phone")
    page.set_viewport_size({"width": 1366, "height": 860})

    # --- the manager, in another browser session -------------------------------------------------------------
    manager_context = browser.new_context(viewport={"width": 1366, "height": 860})
    try:
        manager = manager_context.new_page()
        sign_in(manager, "manager@example.com")
        manager.goto(f"{live_server.url}/approvals/")
        card = manager.locator("li.approval")
        assert card.count() == 1
        assert "dev@example.com" in card.inner_text() and "mybox" in card.inner_text()
        screenshot(manager, "approval-queue")
        card.get_by_label("Reason").fill("Have fun")
        card.get_by_role("button", name=re.compile("^Approve")).click()
        manager.wait_for_url("**/approvals/")
        assert "You approved run" in manager.locator(".messages").inner_text()
        assert manager.locator("li.approval").count() == 0
        assert "Have fun" in manager.locator("#recent-title + .table-wrap").inner_text()
        screenshot(manager, "approval-queue-after")
        manager.goto(run_url)
        live = manager.locator("#run-live")
        assert "manager@example.com" in live.inner_text() and "Have fun" in live.inner_text()
        screenshot(manager, "run-approved-manager")
    finally:
        manager_context.close()

    # --- back to the developer's open run page: it followed the run without a reload ------------------------
    status = page.locator("#run-live .run-status")
    status.filter(has_text="Success").wait_for(timeout=15_000)
    live = page.locator("#run-live")
    assert live.get_attribute("data-live-url") is None  # finished: no longer followed
    assert "Approved" in live.inner_text() and "Have fun" in live.inner_text()
    assert page.get_by_role("link", name="Sandbox mybox").get_attribute("href") == "/catalog/sandbox/mybox/"
    screenshot(page, "run-succeeded")

    page.goto(f"{live_server.url}/runs/")
    assert page.locator("tbody tr").count() == 1 and "Success" in page.locator("tbody tr").inner_text()
    screenshot(page, "my-runs")


def test_entity_picker_narrows_its_choices_as_you_type(live_server, page, sign_in, screenshot, story):
    from catalog.models import Blueprint

    system = Actor.system()
    sandbox = Blueprint.objects.get(identifier="sandbox")
    for name in ("alpha", "beta", "gamma"):
        EntityFactory(blueprint=sandbox, identifier=name, title=name.title())
    action = action_create(actor=system, data={
        "identifier": "clone_sandbox", "title": "Clone a sandbox",
        "trigger": {"type": "self-service", "operation": "CREATE", "blueprintIdentifier": "sandbox", "userInputs": {
            "properties": {"source": {"type": "string", "format": "entity", "blueprint": "sandbox", "title": "Source"}},
            "required": ["source"]}},
        "invocationMethod": {"type": "WEBHOOK", "url": "http://127.0.0.1:9/hook"},
    })
    action_permissions_update(actor=system, action=action, data={"execute": {"users": ["dev@example.com"]}})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    sign_in(page, "dev@example.com")
    page.goto(f"{live_server.url}/actions/clone_sandbox/run")

    def choices():
        return page.eval_on_selector_all("#input-p-source option", "os => os.map(o => o.value + (o.selected ? '*' : ''))")

    assert choices() == ["*", "alpha", "beta", "gamma"]
    # its accessible name: the * is for eyes only
    page.get_by_role("combobox", name="Source (required)", exact=True).select_option("beta")
    page.get_by_label("Filter the choices of Source").fill("gam")  # fetched as you type, no reload
    page.wait_for_function("document.querySelectorAll('#input-p-source option').length === 3")
    assert choices() == ["", "gamma", "beta*"]  # the chosen one stays chosen
    assert page.url.endswith("/actions/clone_sandbox/run")
    assert "1 match for “gam”" in page.locator("#input-p-source-help").inner_text()
    screenshot(page, "entity-picker-filtered")
    assert errors == []


def test_every_input_type_in_the_browser(live_server, page, sign_in, screenshot):
    """The form of every input type, as the browser sees it: its own checks follow the definition."""
    from tests.support.action_form import EVERY_INPUT, ORDER
    from tests.support.runs import catalog_setup

    catalog_setup()
    action = action_create(actor=Actor.system(), data={
        "identifier": "provision", "title": "Provision", "description": "Every kind of input.",
        "trigger": {"type": "self-service", "operation": "CREATE", "blueprintIdentifier": "Env",
                    "userInputs": {"properties": EVERY_INPUT, "required": ["name", "service"], "order": ORDER}},
        "invocationMethod": {"type": "WEBHOOK", "url": "http://127.0.0.1:9/hook"},
    })
    action_permissions_update(actor=Actor.system(), action=action, data={"execute": {"users": ["dev@example.com"]}})
    sign_in(page, "dev@example.com")
    page.goto(f"{live_server.url}/actions/provision/run")
    screenshot(page, "every-input-type")

    def valid(selector, value):
        page.fill(selector, value)
        return page.eval_on_selector(selector, "el => el.checkValidity()")

    assert valid("#input-p-name", "ok1") and not valid("#input-p-name", "Not ok") and not valid("#input-p-name", "ab")
    assert valid("#input-p-ip4", "10.1.2.3") and not valid("#input-p-ip4", "10.1.2.300")
    assert not valid("#input-p-replicas", "7") and valid("#input-p-replicas", "5")
    assert not valid("#input-p-docs", "not a url") and valid("#input-p-docs", "https://docs.example.com")
    assert not valid("#input-p-contact", "nobody") and valid("#input-p-contact", "a@example.com")
    assert page.eval_on_selector("#input-p-service", "el => el.validity.valueMissing") is True
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "every-input-type-phone")


def test_request_and_approve_with_javascript_off(live_server, browser, sign_in, screenshot, story):
    """The core flows are plain forms: a run is requested and approved with JavaScript off, and the run page
    shows the outcome on reload. The keyboard reaches the skip link first, then the form's fields in order."""
    contexts = [browser.new_context(java_script_enabled=False, viewport={"width": 1366, "height": 860}) for _ in range(2)]
    try:
        developer, manager = (context.new_page() for context in contexts)
        sign_in(developer, "dev@example.com")
        developer.goto(f"{live_server.url}/actions/spin_up_sandbox/run")
        developer.keyboard.press("Tab")
        assert developer.evaluate("document.activeElement.textContent") == "Skip to content"
        developer.keyboard.press("Enter")
        focused = []
        for _ in range(3):
            developer.keyboard.press("Tab")
            focused.append(developer.evaluate("document.activeElement.id || document.activeElement.textContent"))
        assert focused == ["Actions", "input-p-name", "input-p-branch"], focused  # the breadcrumb, then the form
        developer.get_by_label("Name").fill("quiet")
        developer.get_by_role("button", name="Run", exact=True).click()
        developer.wait_for_url(re.compile(r".*/runs/r_[0-9a-f]+/$"))
        run_url = developer.url
        assert developer.locator("#run-live .run-status").inner_text().startswith("Waiting For Approval")
        screenshot(developer, "no-js-run-waiting")

        sign_in(manager, "manager@example.com")
        manager.goto(f"{live_server.url}/approvals/")
        manager.locator("li.approval").get_by_role("button", name=re.compile("^Approve")).click()
        manager.wait_for_url("**/approvals/")
        assert "You approved run" in manager.locator(".messages").inner_text()
        screenshot(manager, "no-js-approved")

        developer.goto(run_url)
        assert developer.locator("#run-live .run-status").inner_text().startswith("Success")
        assert developer.get_by_role("link", name="Sandbox quiet").count() == 1
        screenshot(developer, "no-js-run-succeeded")
    finally:
        for context in contexts:
            context.close()
