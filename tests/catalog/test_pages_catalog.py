"""Catalog pages: /catalog/ (the blueprints a user may read) and /catalog/<blueprint>/ (the table: columns,
filters compiled by the API's search, sorting, keyset pages, column choice, permission filtering)."""
import re
from html import unescape

import pytest

from catalog.services.permissions import blueprint_permissions_update
from portal.actor import Actor
from tests.factories import EntityFactory, UserFactory
from tests.support.catalog_pages import _queries, headers, service, table_rows

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system()


def text(response):
    """The page's visible text, roughly: tags dropped, whitespace squeezed."""
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body))).strip()


# -- /catalog/ ---------------------------------------------------------------------------------------------


def test_catalog_lists_readable_blueprints_with_counts_and_descriptions(dev):
    response = dev.get("/catalog/")
    assert response.status_code == 200
    page = text(response)
    assert "Service" in page and "3 entities" in page and "A deployable service." in page
    assert "Domain" in page and "1 entity" in page
    assert "Secret things" not in page  # not readable: not listed
    assert 'href="/catalog/Service/"' in response.content.decode()


def test_catalog_counts_only_the_entities_a_team_may_read(client, catalog):
    blueprint_permissions_update(actor=SYSTEM, blueprint=catalog,
                                 data={"entities": {"read": {"roles": [], "ownedByTeam": True}}})
    client.login(username="pay@example.com", password="pw")
    assert "2 entities" in text(client.get("/catalog/"))  # checkout and billing, not portal


def test_pages_ask_for_a_sign_in(client, catalog):
    for url in ("/catalog/", "/catalog/Service/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


# -- the table ---------------------------------------------------------------------------------------------


def test_table_shows_title_and_the_first_six_columns_by_default(dev, catalog):
    response = dev.get("/catalog/Service/")
    assert response.status_code == 200
    # The first schema properties in stored order (jsonb keeps keys shortest first), with up to two
    # mirror/calculation columns among the six.
    stored = [catalog.schema["properties"][key]["title"] for key in catalog.schema["properties"]]
    assert headers(response) == ["Title", *stored[:4], "Domain tier", "Label"]
    assert table_rows(response) == ["billing", "checkout", "portal"]  # identifier order by default


def test_table_cells_are_formatted(dev):
    response = dev.get("/catalog/Service/?columns=language,replicas,public,repo,domainTier,label,owner")
    assert response.status_code == 200
    html = response.content.decode()
    assert headers(response) == ["Title", "Language", "Replicas", "Public", "Repository", "Domain tier", "Label", "Owner"]
    assert '<span class="badge blue">Go</span>' in html  # enum colour, and the value as text
    assert '<span class="badge orange">gold</span>' in html  # a mirror carries its target's enum colours
    assert "checkout on Go" in html  # calculation value
    assert '<a href="https://git.example.com/checkout" rel="noopener noreferrer">' in html
    assert '<span class="badge green">Yes</span>' in html and '<span class="badge lightGray">No</span>' in html
    assert '<a href="/catalog/Service/checkout/">Checkout</a>' in html
    assert html.count('<span class="kind">mirror</span>') >= 1 and '<span class="kind">calculation</span>' in html
    assert '<a href="mailto:pay@example.com">pay@example.com</a>' in html


def test_dates_are_readable(dev):
    response = dev.get("/catalog/Service/?columns=releasedAt,$updatedAt")
    html = response.content.decode()
    assert '<time datetime="2025-03-01T10:30:00+00:00">2025-03-01 10:30 UTC</time>' in html


def test_enum_filter_uses_the_search_rules(dev):
    response = dev.get("/catalog/Service/", {"f.language": "Python"})
    assert response.status_code == 200
    assert table_rows(response) == ["billing"]
    assert '"property": "language"' in unescape(response.content.decode())  # the rule set shown for the API
    assert '<option value="Python" selected>' in response.content.decode()


def test_boolean_number_relation_team_and_text_filters(dev):
    assert table_rows(dev.get("/catalog/Service/", {"f.public": "false"})) == ["billing"]
    assert table_rows(dev.get("/catalog/Service/", {"f.replicas": "3"})) == ["checkout"]
    assert table_rows(dev.get("/catalog/Service/", {"f.domain": "payments"})) == ["billing", "checkout", "portal"]
    assert table_rows(dev.get("/catalog/Service/", {"f.domain": "other"})) == []
    assert table_rows(dev.get("/catalog/Service/", {"f.$team": "platform"})) == ["portal"]
    assert table_rows(dev.get("/catalog/Service/", {"f.notes": "MONEY"})) == ["checkout"]  # contains, any case
    assert table_rows(dev.get("/catalog/Service/", {"q": "ort"})) == ["portal"]  # title or identifier
    assert table_rows(dev.get("/catalog/Service/", {"q": "Bill", "f.language": "Go"})) == []


def test_date_preset_filter(dev, catalog):
    from django.utils import timezone

    service("fresh", releasedAt=timezone.now().isoformat())
    assert table_rows(dev.get("/catalog/Service/", {"f.releasedAt": "lastWeek"})) == ["fresh"]


def test_a_bad_filter_value_is_shown_at_its_field_with_the_input_kept(dev):
    response = dev.get("/catalog/Service/", {"f.replicas": "three", "f.language": "Go"})
    assert response.status_code == 422
    html = response.content.decode()
    field = re.search(r'<div class="field invalid">.*?</div>\s*</div>', html, re.S).group(0)
    assert 'name="f.replicas" value="three"' in field
    assert "must be a number, got &#x27;three&#x27;" in field
    assert 'aria-invalid="true"' in field
    assert '<option value="Go" selected>' in html  # the other filter is kept too
    assert table_rows(response) == []


def test_sort_by_property_both_ways_with_missing_values_last(dev, catalog):
    service("zeta")  # no language
    response = dev.get("/catalog/Service/", {"sort": "language", "columns": "language"})
    assert table_rows(response) == ["checkout", "billing", "portal", "zeta"]  # Go, Python, Rust, (none)
    assert 'aria-sort="ascending"' in response.content.decode()
    assert table_rows(dev.get("/catalog/Service/", {"sort": "-language"})) == ["portal", "billing", "checkout", "zeta"]
    assert table_rows(dev.get("/catalog/Service/", {"sort": "-replicas"})) == ["checkout", "portal", "billing", "zeta"]
    assert table_rows(dev.get("/catalog/Service/", {"sort": "$title"})) == ["billing", "checkout", "portal", "zeta"]


def test_sort_header_links_toggle_direction_and_keep_filters(dev):
    html = dev.get("/catalog/Service/", {"sort": "replicas", "f.public": "true", "columns": "replicas"}).content.decode()
    link = re.search(r'<a href="([^"]+)">Replicas', html).group(1)
    assert "sort=-replicas" in link and "f.public=true" in link


def test_an_unknown_sort_is_refused_at_the_top(dev):
    response = dev.get("/catalog/Service/", {"sort": "label"})  # a calculation: computed, not sortable
    assert response.status_code == 422
    assert "sort: &#x27;label&#x27; is not a column this table can sort by" in response.content.decode()


@pytest.mark.parametrize("sort", ["$identifier", "-$identifier", "replicas", "-replicas", "language", "-$updatedAt"])
def test_keyset_pages_walk_forward_and_back_over_every_entity(dev, catalog, sort):
    for i in range(5):
        service(f"svc-{i}", replicas=i % 2, **({"language": "Go"} if i % 3 else {}))
    expected = table_rows(dev.get("/catalog/Service/", {"sort": sort, "limit": 100}))
    assert len(expected) == 8
    seen, pages, url = [], [], f"/catalog/Service/?sort={sort}&limit=3"
    while url:
        response = dev.get(url)
        assert response.status_code == 200
        pages.append(table_rows(response))
        seen += pages[-1]
        next_link = re.search(r'<a href="([^"]+)" rel="next">', response.content.decode())
        url = "/catalog/Service/" + unescape(next_link.group(1)) if next_link else None
    assert seen == expected
    assert [len(p) for p in pages] == [3, 3, 2]
    previous = re.search(r'<a href="([^"]+)" rel="prev">', response.content.decode()).group(1)
    back = dev.get("/catalog/Service/" + unescape(previous))
    assert table_rows(back) == pages[1]
    assert re.search(r'rel="prev"', back.content.decode())  # page 2 has a page before it


def test_a_cursor_of_another_sort_is_refused(dev, catalog):
    for i in range(3):
        service(f"svc-{i}")
    html = dev.get("/catalog/Service/", {"limit": 2}).content.decode()
    cursor = re.search(r"after=([^&\"]+)", html).group(1)
    response = dev.get(f"/catalog/Service/?limit=2&sort=replicas&after={cursor}")
    assert response.status_code == 422
    assert "after: belongs to another sort order" in response.content.decode()


@pytest.mark.parametrize("sort, position", [
    ("$createdAt", [False, "9999-99-99T00:00:00Z", 1]),  # PostgreSQL's cast would fail
    ("-$updatedAt", [False, "0001-01-01T00:00:00+01:00", 1]),
    ("$title", [False, {"a": 1}, 1]),  # psycopg cannot adapt it
    ("$identifier", [False, "svc\x00", 1]),  # text cannot hold NUL
    ("replicas", [False, float("nan"), 1]),  # not JSON, not jsonb
    ("notes", [False, "a\x00", 1]),
    ("notes", [True, "not missing", 1]),
])
def test_a_hand_made_cursor_is_refused_at_its_parameter(dev, catalog, sort, position):
    from portal.api.pagination import cursor_encode

    service("svc-1", notes="a", replicas=1)
    cursor = cursor_encode(["a", sort.lstrip("-"), *position])
    response = dev.get("/catalog/Service/", {"sort": sort, "after": cursor})
    assert response.status_code == 422, response.content[:300]
    assert "after: is not a cursor of this page" in response.content.decode()


def test_chosen_columns_are_remembered_per_blueprint_until_reset(dev):
    assert headers(dev.get("/catalog/Service/?columns=notes,$team,nope")) == ["Title", "Notes", "Teams"]  # unknown dropped
    assert headers(dev.get("/catalog/Service/")) == ["Title", "Notes", "Teams"]
    assert headers(dev.get("/catalog/Domain/")) == ["Title", "Tier"]  # another blueprint keeps its own default
    default = headers(dev.get("/catalog/Service/?columns=default"))
    assert len(default) == 7 and "Teams" not in default


def test_the_column_form_submits_repeated_columns(dev):
    response = dev.get("/catalog/Service/?columns=&columns=replicas&columns=domain")
    assert headers(response) == ["Title", "Replicas", "Domain"]
    assert '<a href="/catalog/Domain/payments/">payments</a>' in response.content.decode()


def test_an_unreadable_blueprint_is_404(dev):
    assert dev.get("/catalog/Secret/").status_code == 404
    assert dev.get("/catalog/Nope/").status_code == 404


def test_owned_by_team_read_shows_only_the_teams_entities(client, catalog):
    blueprint_permissions_update(actor=SYSTEM, blueprint=catalog,
                                 data={"entities": {"read": {"roles": [], "ownedByTeam": True}}})
    client.login(username="dev@example.com", password="pw")
    assert table_rows(client.get("/catalog/Service/")) == ["portal"]


def test_admins_read_everything(client, catalog):
    UserFactory(email="admin@example.com", admin=True)
    client.login(username="admin@example.com", password="pw")
    assert "Secret things" in text(client.get("/catalog/"))
    assert table_rows(client.get("/catalog/Secret/")) == ["vault"]


def test_query_counts_do_not_grow_with_the_rows(dev, catalog):
    url = "/catalog/Service/?columns=language,domain,domainTier,label,$team,notes&limit=50"
    EntityFactory(blueprint="Domain", identifier="other", properties={"tier": "silver"})
    first_table, first_list = _queries(dev, url), _queries(dev, "/catalog/")
    for i in range(30):
        service(f"svc-{i:02d}", teams=["platform"], language="Go", replicas=i, notes="n")
    assert len(table_rows(dev.get(url))) == 33
    assert _queries(dev, url) == first_table
    assert _queries(dev, "/catalog/") == first_list
