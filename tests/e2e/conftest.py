"""Browser tests: Playwright driving Debian's Chromium (headless) against `live_server`.

`make test` installs the `chromium` package (Makefile target `chromium`); Playwright's own browser download is
never used. Without a Chromium the browser tests are skipped locally, and fail under CI (CI=true).
Every test saves screenshots of the pages it visits under test-artifacts/<test name>/ (ignored by git).
"""
import os
import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from actions.models import NotificationSettings
from catalog.services.deployments import deployment_record
from portal.actor import Actor
from portal.datetimes import instant_text
from tests.factories import UserFactory
from tests.support.slack import FakeSlack


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_CANDIDATES = (os.environ.get("CHROMIUM_PATH", ""), "/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_path():
    for candidate in CHROMIUM_CANDIDATES:
        if candidate and os.path.exists(candidate):
            return candidate
    return shutil.which("chromium")


@pytest.fixture(scope="package")
def browser():
    executable = chromium_path()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("No Chromium found: `make chromium` installs Debian's package (or set CHROMIUM_PATH).")
        pytest.skip("No Chromium found: run `make chromium` (Debian's package) or set CHROMIUM_PATH.")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread while the browser is open; the ORM calls the tests make
    # in between are ordinary synchronous code, so Django's async-safety guard must not refuse them. Only while the
    # browser is open (package scope): the variable must not leak into what later tests start (`check --deploy`
    # refuses it).
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


class Screenshots:
    """Saves numbered full-page screenshots of one test under test-artifacts/<test>/."""

    def __init__(self, test_name):
        self.folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def __call__(self, page, name):
        self.count += 1
        path = self.folder / f"{self.count:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def screenshot(request):
    return Screenshots(request.node.name)


@pytest.fixture
def browser_context(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 860})
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(browser_context):
    return browser_context.new_page()


@pytest.fixture
def sign_in(live_server):
    """sign_in(page, email, password): the Django sign-in form, as a person uses it."""

    def sign_in(page, email, password="pw"):
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Email or username").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"^(?!.*/login/).*$"))
        return page

    return sign_in


@pytest.fixture
def starter_portal(live_server, settings, httpserver):
    """The starter catalog and actions (`load_starter`, as `make demo` installs them) served by `live_server`: the
    demo receiver on, Celery eager, Slack faked on loopback (returned), CartService deployed to production and
    staging, and manager@example.com in the Managers team."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.PORTAL_BASE_URL = live_server.url
    settings.DEMO_RECEIVER_ENABLED = True
    settings.DEMO_RECEIVER_DELAY_SECONDS = 0
    settings.SLACK_BOT_TOKEN = "xoxb-test"
    settings.SLACK_API_URL = httpserver.url_for("/api/")
    slack = FakeSlack(httpserver)
    call_command("load_starter", stdout=open("/dev/null", "w"))
    NotificationSettings.objects.create(platform_channel="#platform")
    for environment, version in (("production", "2.4.1"), ("staging", "2.5.0")):
        deployment_record(actor=Actor.system(), data={
            "service": "CartService", "environment": environment, "version": version, "commitSha": "9f8e7d6c5b",
            "jobUrl": "https://ci.example.com/jobs/7", "commitTime": instant_text(timezone.now() - timedelta(hours=2))})
    UserFactory(email="manager@example.com", teams=["Managers"])
    return slack
