"""Browser: a service owner opens the Production readiness dashboard, follows the rule failing most often to a
failing service, reads on its page what to fix, CI fixes it through the API, and the page shows the level risen."""
import re

import pytest
import requests

from catalog.models import Blueprint
from catalog.services.scorecards import scorecard_create
from portal.actor import Actor
from tests.factories import ApiClientFactory, BlueprintFactory, EntityFactory, UserFactory
from tests.support.api import token_of

pytestmark = pytest.mark.django_db(transaction=True)


def rule(identifier, title, level, prop):
    return {"identifier": identifier, "title": title, "level": level,
            "query": {"combinator": "and", "conditions": [{"property": prop, "operator": "isNotEmpty"}]}}


@pytest.fixture
def readiness(db):
    owner = UserFactory(email="dev@example.com", teams=["payments"], admin=True)
    BlueprintFactory(identifier="service", title="Service", schema={"properties": {
        "readme": {"type": "string", "title": "README"}, "onCall": {"type": "string", "title": "On-call"}}})
    service = Blueprint.objects.get(identifier="service")
    scorecard_create(actor=Actor.system(), blueprint=service, data={
        "identifier": "readiness", "title": "Production readiness",
        "rules": [rule("hasReadme", "Has a README", "Bronze", "readme"), rule("hasOnCall", "Has on-call", "Silver", "onCall")]})
    EntityFactory(blueprint=service, identifier="checkout", title="Checkout", team=["payments"],
                  properties={"readme": "https://docs.example.com/checkout"})
    EntityFactory(blueprint=service, identifier="ledger", title="Ledger", team=["payments"],
                  properties={"readme": "https://docs.example.com/ledger", "onCall": "#ledger"})
    return token_of(ApiClientFactory(user=owner))


def test_dashboard_to_failing_entity_fix_by_api_level_rises(live_server, page, sign_in, screenshot, readiness):
    sign_in(page, "dev@example.com")
    page.goto(f"{live_server.url}/scorecards/")
    page.get_by_role("link", name="Production readiness").click()
    page.wait_for_url(re.compile(r"/scorecards/service/readiness/$"))
    assert page.get_by_role("heading", name="Production readiness", level=1).is_visible()
    assert page.get_by_text("2 entities rated.").is_visible()
    screenshot(page, "dashboard")

    page.get_by_role("link", name="Has on-call").click()
    page.wait_for_url(re.compile(r"\?failing=hasOnCall"))
    page.get_by_role("link", name="Checkout").click()
    page.wait_for_url(re.compile(r"/catalog/service/checkout/$"))
    card = page.locator("article.scorecard")
    assert card.locator(".level").inner_text() == "Bronze"
    assert "To reach Silver, fix:" in card.inner_text() and "Has on-call" in card.locator(".to-fix").inner_text()
    screenshot(page, "entity-bronze")

    fixed = requests.patch(f"{live_server.url}/v1/blueprints/service/entities/checkout", timeout=10,
                           headers={"Authorization": f"Bearer {readiness}"}, json={"properties": {"onCall": "#payments"}})
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["entity"]["scorecards"]["readiness"]["level"] == "Gold"  # no Gold rules: Silver's reach it

    page.reload()
    card = page.locator("article.scorecard")
    assert card.locator(".level").inner_text() == "Gold"
    assert "The highest level." in card.inner_text()
    screenshot(page, "entity-gold")

    page.goto(f"{live_server.url}/scorecards/service/readiness/")
    assert page.get_by_text("Every rated entity passes every rule.").is_visible()
