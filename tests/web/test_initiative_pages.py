"""The initiative pages: /initiatives/ (each goal with its due date and progress) and an initiative's page (the goal in
words, progress per team, the entities still failing with what each must fix), as far as the user may read."""

import pytest

from catalog.models import Blueprint
from catalog.services.initiatives import initiative_create
from catalog.services.permissions import blueprint_permissions_update
from catalog.services.scorecards import scorecard_create
from portal.actor import Actor
from tests.factories import BlueprintFactory, EntityFactory, UserFactory
from tests.support.pages import html_section, page_as

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()
URL = "/initiatives/onCallEverywhere/"


@pytest.fixture
def on_call_goal(db):
    UserFactory(email="admin@example.com", admin=True)
    UserFactory(email="pay@example.com", teams=["payments"])
    UserFactory(email="ops@example.com", teams=["platform"])
    BlueprintFactory(identifier="service", title="Service", schema={"properties": {
        "readme": {"type": "string"}, "onCall": {"type": "string"}}})
    blueprint = Blueprint.objects.get(identifier="service")
    scorecard_create(actor=SYSTEM, blueprint=blueprint, data={"identifier": "readiness", "title": "Readiness", "rules": [
        {"identifier": "hasReadme", "title": "Has a README", "description": "Link the README.", "level": "Bronze",
         "query": {"combinator": "and", "conditions": [{"property": "readme", "operator": "isNotEmpty"}]}},
        {"identifier": "hasOnCall", "title": "Has on-call", "description": "Name the rota.", "level": "Silver",
         "query": {"combinator": "and", "conditions": [{"property": "onCall", "operator": "isNotEmpty"}]}}]})
    for identifier, team, properties in (("checkout", "payments", {"readme": "r", "onCall": "o"}),
                                         ("billing", "payments", {"readme": "r"}), ("ledger", "platform", {})):
        EntityFactory(blueprint=blueprint, identifier=identifier, team=[team], properties=properties)
    blueprint_permissions_update(actor=SYSTEM, blueprint=blueprint,
                                 data={"entities": {"read": {"roles": [], "ownedByTeam": True}}})
    initiative_create(actor=SYSTEM, data={"identifier": "onCallEverywhere", "title": "On-call everywhere",
                                          "blueprint": "service", "scorecard": "readiness", "level": "Silver",
                                          "dueDate": "2027-03-31"})


def page_of(client, email, url=URL):
    return page_as(client, email, url)


def test_the_list_shows_each_initiative_with_its_progress(client, on_call_goal):
    response, text = page_of(client, "admin@example.com", "/initiatives/")
    assert response.status_code == 200
    assert f'href="{URL}"' in text and "1 of 3 (33%)" in text and "2027-03-31" in text
    assert 'aria-current="page">Initiatives<' in text


def test_the_page_shows_the_goal_progress_per_team_and_what_to_fix(client, on_call_goal):
    response, text = page_of(client, "admin@example.com")
    assert response.status_code == 200
    assert "reaches <strong>Silver</strong>" in html_section(text, "goal-heading")
    progress = html_section(text, "progress-heading")
    assert "1 of 3 entities meet it (33%)" in progress and "In progress" in progress
    assert 'href="/initiatives/onCallEverywhere/?team=payments"' in progress
    failing = html_section(text, "failing-heading")
    assert 'href="/catalog/service/billing/"' in failing and 'href="/catalog/service/ledger/"' in failing
    assert "<strong>Has on-call</strong> — Name the rota." in failing
    assert "checkout" not in failing
    _, narrowed = page_of(client, "admin@example.com", URL + "?team=platform")
    assert "ledger" in html_section(narrowed, "failing-heading") and "billing" not in html_section(narrowed, "failing-heading")


def test_a_member_sees_only_their_teams_entities(client, on_call_goal):
    _, text = page_of(client, "pay@example.com")
    assert "1 of 2 entities meet it (50%)" in html_section(text, "progress-heading")
    assert "ledger" not in text and "platform" not in text


def test_an_unknown_initiative_is_a_404_page(client, on_call_goal):
    response, text = page_of(client, "admin@example.com", "/initiatives/nope/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_a_team_page_shows_the_teams_progress_on_each_initiative(client, on_call_goal):
    _, text = page_of(client, "admin@example.com", "/teams/payments/")
    initiatives = html_section(text, "initiatives-heading")
    assert 'href="/initiatives/onCallEverywhere/?team=payments"' in initiatives and "1 of 2" in initiatives
    _, text = page_of(client, "pay@example.com", "/teams/platform/")
    assert "No initiative covers an entity of this team that you may see." in html_section(text, "initiatives-heading")
