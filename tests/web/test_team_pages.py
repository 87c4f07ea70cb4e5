"""The team pages: /teams/ (each team's members, entities and level counts per scorecard) and /teams/<team>/ (its
members, its entities of blueprints with scorecards lowest level first with what to fix, level counts linking to the
dashboard, its other entities linking to the blueprint table filtered by the team) — only what the user may read,
counts included, in a number of queries that does not grow with the team; links to the team page from the
scorecard dashboard and the entity page."""
import re
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Blueprint
from catalog.services.permissions import blueprint_permissions_update
from catalog.services.scorecards import scorecard_create
from portal.actor import Actor
from tests.factories import BlueprintFactory, EntityFactory, TeamFactory, UserFactory
from tests.support.pages import html_section, page_as

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()
ODD = "Site Reliability / Ops & <Co> 100%"  # spaces, a slash, HTML and URL characters
ODD_URL = "/teams/Site%20Reliability%20%2F%20Ops%20%26%20%3CCo%3E%20100%25/"
NOBODY_READS = {"entities": {"read": {"roles": [], "ownedByTeam": False}}}


def rule(identifier, title, level, prop):
    return {"identifier": identifier, "title": title, "level": level,
            "query": {"combinator": "and", "conditions": [{"property": prop, "operator": "isNotEmpty"}]}}


def service(identifier, teams, **properties):
    EntityFactory(blueprint=Blueprint.objects.get(identifier="service"), identifier=identifier, team=teams,
                  properties=properties)


@pytest.fixture
def team_world(db):
    """Services rated by `readiness` (README for Bronze, on-call and runbook for Silver, nothing for Gold); members
    read only what their teams own; libraries have no scorecard; nobody but admins reads `secret`."""
    TeamFactory(name=ODD, description="Keeps production up.")
    UserFactory(email="admin@example.com", admin=True)
    UserFactory(email="pay@example.com", first_name="Pat", last_name="Payer", teams=["payments"])
    UserFactory(email="ops@example.com", first_name="Olga", last_name="Ops", teams=["platform", ODD])
    UserFactory(email="", username="robot", teams=["platform"])
    BlueprintFactory(identifier="service", title="Service", schema={"properties": {
        "readme": {"type": "string"}, "onCall": {"type": "string"}, "runbook": {"type": "string"},
        "tier": {"type": "string"}}})
    BlueprintFactory(identifier="library", title="Library")
    BlueprintFactory(identifier="secret", title="Secret")
    blueprint = Blueprint.objects.get(identifier="service")
    scorecard_create(actor=SYSTEM, blueprint=blueprint, data={
        "identifier": "readiness", "title": "Production readiness",
        "filter": {"combinator": "and", "conditions": [{"property": "tier", "operator": "=", "value": "prod"}]},
        "rules": [rule("hasReadme", "Has a README", "Bronze", "readme"), rule("hasOnCall", "Has on-call", "Silver", "onCall"),
                  rule("hasRunbook", "Has a runbook", "Silver", "runbook")]})
    service("ledger", ["platform"], tier="prod", readme="r")  # Bronze: on-call and runbook to fix
    service("search", ["platform"], tier="prod")  # Basic: README to fix
    service("gateway", ["platform"], tier="prod", readme="r", onCall="o", runbook="b")  # Gold
    service("sandbox", ["platform"], tier="dev")  # left out by the filter
    service("shared", ["platform", "payments"], tier="prod", readme="r", onCall="o")  # Bronze: the runbook
    service("checkout", ["payments"], tier="prod", readme="r", onCall="o", runbook="b")
    for i in range(2):
        EntityFactory(blueprint="library", identifier=f"lib{i}", team=["platform"])
    EntityFactory(blueprint="library", identifier="paylib", team=["payments"])
    EntityFactory(blueprint="secret", identifier="vault", team=["platform", "payments"])
    for identifier in ("service", "library"):
        blueprint_permissions_update(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier=identifier),
                                     data={"entities": {"read": {"roles": [], "ownedByTeam": True}}})
    blueprint_permissions_update(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="secret"), data=NOBODY_READS)


def entity_rows(text):
    """[(entity title, level, the cell's text)] of the rated table, in the page's order."""
    rows = re.findall(r'<tr><th scope="row"><a href="[^"]+">([^<]+)</a></th>\s*<td>(.*?)</td>', text, re.S)
    return [(title, re.search(r'level-\w+">(\w+)</span>', cell).group(1) if "badge" in cell else None,
             re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell)).strip()) for title, cell in rows]


def test_the_team_page_lists_entities_lowest_level_first_with_what_to_fix(client, team_world):
    response, text = page_as(client, "ops@example.com", "/teams/platform/")
    assert response.status_code == 200
    rows = entity_rows(html_section(text, "scorecards-heading"))
    assert [(title, level) for title, level, _ in rows] == [
        ("search", "Basic"), ("ledger", "Bronze"), ("shared", "Bronze"), ("gateway", "Gold"), ("sandbox", None)]
    cells = {title: cell for title, _, cell in rows}
    assert cells["search"] == "Basic 3 rules failing To reach Bronze: Has a README"
    assert cells["ledger"] == "Bronze 2 rules failing To reach Silver: Has on-call, Has a runbook"
    assert cells["shared"] == "Bronze 1 rule failing To reach Silver: Has a runbook"
    assert cells["gateway"] == "Gold" and cells["sandbox"] == "not rated"
    assert 'href="/catalog/service/search/"' in text


def test_the_level_summary_links_to_the_dashboard_and_the_tables_filter_by_team(client, team_world):
    _, text = page_as(client, "ops@example.com", "/teams/platform/")
    scorecards = html_section(text, "scorecards-heading")
    summary = dict(re.findall(r'href="/scorecards/service/readiness/\?level=(\w+)"><span [^>]+>\w+ (\d+)</span>', scorecards))
    assert summary == {"Basic": "1", "Bronze": "2", "Silver": "0", "Gold": "1"}
    assert "4 rated" in scorecards
    assert '<a href="/catalog/service/?f.%24team=platform">5 entities</a>' in scorecards
    others = html_section(text, "owned-heading")
    assert '<a href="/catalog/library/?f.%24team=platform">Library</a>: 2 entities' in others
    assert "Secret" not in others  # a member may not read it: neither shown nor counted
    _, table = page_as(client, "admin@example.com", "/catalog/library/?f.%24team=platform")
    assert 'href="/catalog/library/lib0/"' in table and "paylib" not in table  # the table filters by the team


def test_members_are_shown_by_name_and_email(client, team_world):
    _, text = page_as(client, "pay@example.com", "/teams/platform/")
    members = html_section(text, "members-heading")
    assert re.findall(r"<li>(.*?)</li>", members) == ['Olga Ops <span class="muted"><ops@example.com></span>', "robot"]
    assert "Pat Payer" not in members


def test_a_member_sees_and_counts_only_the_entities_they_may_read(client, team_world):
    _, text = page_as(client, "pay@example.com", "/teams/platform/")
    assert [title for title, _, _ in entity_rows(text)] == ["shared"]  # owned by payments too
    assert '<a href="/catalog/service/?f.%24team=platform">1 entity</a>' in text
    assert "Library" not in text and "None that you may see" in html_section(text, "owned-heading")
    _, overview = page_as(client, "pay@example.com", "/teams/")
    card = overview[overview.index('href="/teams/platform/"'):]
    card = card[:card.index("</li>")]
    assert "2 members · 1 entity you may see" in card
    assert re.findall(r'level-\w+" title="\w+">(\w+ \d+)</span>', card) == ["Basic 0", "Bronze 1", "Silver 0", "Gold 0"]


def test_the_team_list_counts_members_entities_and_levels(client, team_world):
    response, text = page_as(client, "admin@example.com", "/teams/")
    assert response.status_code == 200 and 'aria-current="page">Teams</a>' in text
    card = text[text.index('href="/teams/platform/"'):]
    card = card[:card.index("</li>")]
    assert "2 members · 8 entities you may see" in card  # 5 services, 2 libraries and the secret one
    assert "Production readiness" in card
    assert re.findall(r'level-\w+" title="\w+">(\w+ \d+)</span>', card) == ["Basic 1", "Bronze 2", "Silver 0", "Gold 1"]
    assert f'href="{ODD_URL}"' in text


def test_an_odd_team_name_is_encoded_in_links_and_found_and_an_unknown_team_is_404(client, team_world):
    response, text = page_as(client, "ops@example.com", ODD_URL)
    assert response.status_code == 200
    assert f"<h1>{ODD}</h1>" in text and "Keeps production up." in text
    assert "The team owns no entity you may see" in text
    raw = client.get(ODD_URL).content.decode()
    assert "&lt;Co&gt;" in raw and "<Co>" not in raw  # escaped, not markup
    assert quote(ODD, safe="") in ODD_URL
    missing = client.get("/teams/nobody/")
    assert missing.status_code == 404 and b"<h1>Page not found</h1>" in missing.content
    assert client.get("/teams/" + "x" * 5000 + "/").status_code == 404
    client.logout()
    assert client.get("/teams/platform/").status_code == 302  # sign in first
    client.force_login(UserFactory._meta.model.objects.get(email="ops@example.com"))
    refused = client.get("/teams/platform%00/")
    assert refused.status_code == 400 and b"team: must not contain NUL characters" in refused.content


def test_the_dashboard_and_the_entity_page_link_teams_to_their_pages(client, team_world):
    _, dashboard = page_as(client, "admin@example.com", "/scorecards/service/readiness/")
    teams = html_section(dashboard, "teams-heading")
    assert '<a href="/teams/platform/">platform</a>' in teams and '<a href="/teams/payments/">payments</a>' in teams
    EntityFactory(blueprint="library", identifier="odd", team=[ODD])
    _, entity = page_as(client, "admin@example.com", "/catalog/library/odd/")
    assert f'<a class="badge" href="{ODD_URL}">{ODD}</a>' in entity


def test_queries_do_not_grow_with_the_team(client, team_world):
    """3 entities of each blueprint and 3 members, then 30 of each and another team: as many statements."""
    for i in range(3):
        UserFactory(email=f"grower{i}@example.com", teams=["growing"])
        service(f"grow{i}", ["growing"], tier="prod", readme="r")
        EntityFactory(blueprint="library", identifier=f"growlib{i}", team=["growing"])
    page_as(client, "grower0@example.com", "/teams/")

    def statements(url):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    few = statements("/teams/growing/"), statements("/teams/")
    for i in range(3, 30):
        service(f"grow{i}", ["growing"], tier="prod", **({"readme": "r"} if i % 2 else {}))
        EntityFactory(blueprint="library", identifier=f"growlib{i}", team=["growing"])
        UserFactory(email=f"grower{i}@example.com", teams=["growing"])
    TeamFactory(name="another")
    many = statements("/teams/growing/"), statements("/teams/")
    assert many == few
    _, text = page_as(client, "grower0@example.com", "/teams/growing/")
    assert len(entity_rows(text)) == 30 and html_section(text, "members-heading").count("<li>") == 30
