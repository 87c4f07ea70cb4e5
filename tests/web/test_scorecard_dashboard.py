"""The scorecard pages: /scorecards/ and a scorecard's maturity dashboard — level counts overall and per team, the
rules failing most often, the entities at a level or failing a rule, the trend — as far as the user may read the
entities, in a number of queries that does not grow with the catalog."""
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.models import Blueprint
from catalog.services.permissions import blueprint_permissions_update
from catalog.services.scorecards import scorecard_create, scorecard_snapshots_take
from portal.actor import Actor
from tests.factories import BlueprintFactory, EntityFactory, UserFactory
from tests.support.pages import html_section, page_as

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()
URL = "/scorecards/service/readiness/"


def rule(identifier, title, level, prop):
    return {"identifier": identifier, "title": title, "level": level,
            "query": {"combinator": "and", "conditions": [{"property": prop, "operator": "isNotEmpty"}]}}


def service(identifier, team, **properties):
    EntityFactory(blueprint=Blueprint.objects.get(identifier="service"), identifier=identifier, team=[team],
                  properties=properties)


@pytest.fixture
def rated_services(db):
    UserFactory(email="admin@example.com", admin=True)
    UserFactory(email="pay@example.com", teams=["payments"])
    UserFactory(email="ops@example.com", teams=["platform"])
    BlueprintFactory(identifier="service", title="Service", schema={"properties": {
        "readme": {"type": "string"}, "onCall": {"type": "string"}, "tier": {"type": "string"}}})
    blueprint = Blueprint.objects.get(identifier="service")
    scorecard_create(actor=SYSTEM, blueprint=blueprint, data={
        "identifier": "readiness", "title": "Production readiness",
        "filter": {"combinator": "and", "conditions": [{"property": "tier", "operator": "=", "value": "prod"}]},
        "rules": [rule("hasReadme", "Has a README", "Bronze", "readme"), rule("hasOnCall", "Has on-call", "Silver", "onCall")]})
    service("checkout", "payments", tier="prod", readme="r", onCall="o")
    service("billing", "payments", tier="prod", readme="r")
    service("ledger", "platform", tier="prod")
    service("search", "platform", tier="prod")
    service("sandbox", "platform", tier="dev")
    # members read only their team's services
    blueprint_permissions_update(actor=SYSTEM, blueprint=blueprint,
                                 data={"entities": {"read": {"roles": [], "ownedByTeam": True}}})
    return blueprint


def page_of(client, email, url=URL):
    return page_as(client, email, url)


def test_levels_teams_and_failing_rules_for_someone_who_reads_everything(client, rated_services):
    response, text = page_of(client, "admin@example.com")
    assert response.status_code == 200
    levels = html_section(text, "levels-heading")
    assert "4 entities rated; 1 left out by the scorecard's filter." in levels
    counts = {title: int(n) for title, n in
              re.findall(r'level-\w+">(\w+)</span></a></th>\s*<td class="count">(\d+)</td>', levels)}
    assert counts == {"Basic": 2, "Bronze": 1, "Silver": 0, "Gold": 1}  # no Gold rules: on-call reaches Gold
    failing = html_section(text, "failing-heading")
    assert failing.index("Has on-call") < failing.index("Has a README")  # 3 fail it, 2 fail the other
    teams = html_section(text, "teams-heading")
    assert "payments" in teams and "platform" in teams
    assert "Beat keeps one count a day" in html_section(text, "trend-heading")


def test_a_member_sees_only_what_they_may_read_and_no_trend(client, rated_services):
    _, text = page_of(client, "pay@example.com")
    assert "2 entities rated." in html_section(text, "levels-heading")
    assert "platform" not in html_section(text, "teams-heading")
    assert "you may not read them all" in html_section(text, "trend-heading")
    _, listed = page_of(client, "pay@example.com", URL + "?failing=hasOnCall")
    assert 'href="/catalog/service/billing/"' in listed and "ledger" not in listed


def test_the_entities_at_a_level_link_to_their_pages(client, rated_services):
    _, text = page_of(client, "admin@example.com", URL + "?level=Basic")
    listed = html_section(text, "listed-heading")
    assert "At Basic" in listed
    assert 'href="/catalog/service/ledger/"' in listed and 'href="/catalog/service/search/"' in listed
    assert "checkout" not in listed


def test_the_trend_is_drawn_from_the_daily_snapshots(client, rated_services):
    today = timezone.localdate()
    scorecard_snapshots_take(day=today - timedelta(days=1))
    scorecard_snapshots_take(day=today)
    _, text = page_of(client, "admin@example.com")
    trend = html_section(text, "trend-heading")
    assert trend.count("<polyline") == 4 and "the last 2 days" in trend


def test_queries_do_not_grow_with_the_catalog(client, rated_services):
    page_of(client, "pay@example.com")

    def statements():
        with CaptureQueriesContext(connection) as captured:
            assert client.get(URL).status_code == 200
        return len(captured)

    few = statements()
    for i in range(20):
        service(f"more{i}", "payments", tier="prod", readme="r")
    assert statements() == few


def test_unknown_scorecard_or_unreadable_blueprint_is_404_and_the_list_links_each(client, rated_services):
    assert page_of(client, "admin@example.com", "/scorecards/service/nothing/")[0].status_code == 404
    assert page_of(client, "admin@example.com", "/scorecards/nothing/readiness/")[0].status_code == 404
    response, text = page_of(client, "pay@example.com", "/scorecards/")
    assert response.status_code == 200 and f'href="{URL}"' in text and ">Scorecards</a>" in text
