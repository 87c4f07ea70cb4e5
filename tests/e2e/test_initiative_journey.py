"""Browser: a manager opens the initiatives, follows "On-call everywhere" to its page, narrows it to the payments
team, opens the one service still failing, CI fixes it through the API, and the initiative reads complete."""
import re

import pytest
import requests

from catalog.models import Blueprint
from catalog.services.initiatives import initiative_create
from catalog.services.scorecards import scorecard_create
from portal.actor import Actor
from tests.factories import ApiClientFactory, BlueprintFactory, EntityFactory, UserFactory
from tests.support.api import token_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def silver_initiative(db):
    manager = UserFactory(email="lead@example.com", teams=["payments"], admin=True)
    BlueprintFactory(identifier="service", title="Service", schema={"properties": {"onCall": {"type": "string"}}})
    service = Blueprint.objects.get(identifier="service")
    scorecard_create(actor=Actor.system(), blueprint=service, data={
        "identifier": "readiness", "title": "Production readiness", "rules": [
            {"identifier": "hasOnCall", "title": "Has on-call", "description": "Name the on-call rota.",
             "level": "Silver", "query": {"combinator": "and", "conditions": [{"property": "onCall",
                                                                                "operator": "isNotEmpty"}]}}]})
    EntityFactory(blueprint=service, identifier="checkout", title="Checkout", team=["payments"], properties={})
    EntityFactory(blueprint=service, identifier="ledger", title="Ledger", team=["payments"],
                  properties={"onCall": "#ledger"})
    initiative_create(actor=Actor.system(), data={
        "identifier": "onCallEverywhere", "title": "On-call everywhere", "blueprint": "service",
        "scorecard": "readiness", "level": "Silver", "dueDate": "2027-03-31"})
    return token_of(ApiClientFactory(user=manager))


def test_initiative_to_team_to_failing_entity_fix_by_api_complete(live_server, page, sign_in, screenshot,
                                                                   silver_initiative):
    sign_in(page, "lead@example.com")
    page.goto(f"{live_server.url}/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Initiatives").click()
    page.wait_for_url(re.compile(r"/initiatives/$"))
    assert "1 of 2 (50%)" in page.locator("table.initiatives").inner_text()
    page.get_by_role("link", name="On-call everywhere").click()
    page.wait_for_url(re.compile(r"/initiatives/onCallEverywhere/$"))
    assert page.get_by_text("1 of 2 entities meet it (50%).").is_visible()
    screenshot(page, "initiative")

    page.locator("table.teams").get_by_role("link", name="payments").click()
    page.wait_for_url(re.compile(r"\?team=payments$"))
    failing = page.locator("table.failing-entities")
    assert "Has on-call — Name the on-call rota." in failing.inner_text()
    failing.get_by_role("link", name="Checkout").click()
    page.wait_for_url(re.compile(r"/catalog/service/checkout/$"))
    assert "Has on-call" in page.locator("article.scorecard .to-fix").inner_text()

    fixed = requests.patch(f"{live_server.url}/v1/blueprints/service/entities/checkout", timeout=10,
                           headers={"Authorization": f"Bearer {silver_initiative}"},
                           json={"properties": {"onCall": "#payments"}})
    assert fixed.status_code == 200, fixed.text

    page.goto(f"{live_server.url}/initiatives/onCallEverywhere/")
    assert page.get_by_text("2 of 2 entities meet it (100%).").is_visible()
    assert page.locator("#progress-heading").inner_text().endswith("Complete")
    assert page.get_by_text("Nothing left to fix.").is_visible()
    screenshot(page, "initiative-complete")
