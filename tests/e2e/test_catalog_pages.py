"""Browser: a developer browses the catalog — filters and sorts a blueprint table, opens an entity, follows
relations both ways (the list and the graph), and reads the table on a phone."""
import re

import pytest

from catalog.models import Blueprint
from portal.actor import Actor
from tests.factories import BlueprintFactory, EntityFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

SYSTEM = Actor.system()
DOMAIN = {"identifier": "Domain", "title": "Domain", "description": "Business domains.",
          "schema": {"properties": {"tier": {"type": "string", "title": "Tier", "enum": ["gold", "silver"],
                                             "enumColors": {"gold": "orange", "silver": "lightGray"}}}}}
SERVICE = {
    "identifier": "Service", "title": "Service", "description": "Deployable services and who owns them.",
    "schema": {"properties": {
        "language": {"type": "string", "title": "Language", "enum": ["Go", "Python", "Rust"],
                     "enumColors": {"Go": "blue", "Python": "green", "Rust": "red"}},
        "replicas": {"type": "number", "title": "Replicas"},
        "public": {"type": "boolean", "title": "Public"},
        "repo": {"type": "string", "title": "Repository", "format": "url"},
    }},
    "relations": {"domain": {"title": "Domain", "target": "Domain", "many": False},
                  "dependsOn": {"title": "Depends on", "target": "Service", "many": True}},
    "mirrorProperties": {"domainTier": {"title": "Domain tier", "path": "domain.tier"}},
    "calculationProperties": {"label": {"title": "Label", "type": "string",
                                        "calculation": '.identifier + " (" + (.properties.language // "?") + ")"'}},
}
SERVICES = (
    # identifier, title, language, replicas, public, depends on (created in this order)
    ("ledger", "Ledger", "Python", 2, False, []),
    ("checkout", "Checkout", "Go", 3, True, ["ledger"]),
    ("billing", "Billing", "Python", 5, False, ["checkout"]),
    ("search", "Search", "Rust", 1, True, []),
    ("notify", "Notifications", "Python", 1, True, ["checkout"]),
)


@pytest.fixture
def browsed_catalog(db):
    UserFactory(email="dev@example.com", teams=["platform"])
    BlueprintFactory(**DOMAIN)
    BlueprintFactory(**SERVICE)
    domain, service = Blueprint.objects.get(identifier="Domain"), Blueprint.objects.get(identifier="Service")
    EntityFactory(blueprint=domain, identifier="payments", title="Payments",
                  properties={"tier": "gold"})
    for identifier, title, language, replicas, public, depends in SERVICES:
        EntityFactory(
            blueprint=service,
            identifier=identifier, title=title, team=["platform"],
            properties={"language": language, "replicas": replicas, "public": public,
                        "repo": f"https://git.example.com/{identifier}"},
            relations={"domain": "payments", "dependsOn": depends})


def row_titles(page):
    return page.locator("table.entities tbody tr td:first-child a").all_inner_texts()


def test_browse_filter_sort_open_and_follow_relations(live_server, page, sign_in, screenshot, browsed_catalog):
    sign_in(page, "dev@example.com")
    page.goto(f"{live_server.url}/catalog/")
    assert page.get_by_role("heading", name="Catalog", level=1).is_visible()
    assert page.get_by_text("5 entities").is_visible()
    screenshot(page, "catalog")

    page.get_by_role("link", name="Service", exact=True).click()
    page.wait_for_url(re.compile(r"/catalog/Service/$"))
    assert row_titles(page) == ["Billing", "Checkout", "Ledger", "Notifications", "Search"]
    assert page.locator("span.badge.blue", has_text="Go").is_visible()  # enum colour with its text
    screenshot(page, "service-table")

    # Filter: the Filters panel builds the search rules (language = Python).
    page.get_by_text("Filters", exact=True).click()
    page.get_by_role("combobox", name="Language").select_option("Python")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"f\.language=Python"))
    assert row_titles(page) == ["Billing", "Ledger", "Notifications"]
    screenshot(page, "filtered-python")

    # Sort by a column: Replicas ascending, then descending; the filter stays.
    page.get_by_role("link", name="Replicas").click()
    page.wait_for_url(re.compile(r"sort=replicas"))
    assert row_titles(page) == ["Notifications", "Ledger", "Billing"]
    assert page.locator("th[aria-sort=ascending]").inner_text().startswith("Replicas")
    page.get_by_role("link", name="Replicas").click()
    page.wait_for_url(re.compile(r"sort=-replicas"))
    assert row_titles(page) == ["Billing", "Ledger", "Notifications"]
    screenshot(page, "filtered-sorted-by-replicas-descending")

    # A bad filter value is shown at its field, the value kept.
    page.get_by_role("textbox", name="Replicas").fill("lots")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_load_state()
    field = page.locator(".field.invalid")
    assert "must be a number" in field.inner_text()
    assert page.get_by_role("textbox", name="Replicas").input_value() == "lots"
    screenshot(page, "filter-error-at-the-field")

    # Open an entity; follow an upstream relation from the list, then a downstream one from the graph.
    page.goto(f"{live_server.url}/catalog/Service/")
    page.get_by_role("link", name="Checkout", exact=True).click()
    page.wait_for_url(re.compile(r"/catalog/Service/checkout/$"))
    assert page.get_by_role("heading", name="Checkout", level=1).is_visible()
    assert page.locator("dd span.badge.orange", has_text="gold").is_visible()  # the mirrored domain tier
    assert page.get_by_text("checkout (Go)").is_visible()  # the calculation
    screenshot(page, "entity-checkout")

    page.locator(".relation-group").first.get_by_role("link", name="Ledger").click()
    page.wait_for_url(re.compile(r"/catalog/Service/ledger/$"))
    downstream = page.locator(".relation-group").nth(1)
    assert downstream.get_by_role("link", name="Checkout").is_visible()  # ledger is depended on by checkout
    screenshot(page, "entity-ledger")

    page.locator("svg.relation-graph a.node", has_text="Checkout").click()
    page.wait_for_url(re.compile(r"/catalog/Service/checkout/$"))
    page.locator("svg.relation-graph a.node", has_text="Payments").click()
    page.wait_for_url(re.compile(r"/catalog/Domain/payments/$"))
    assert page.locator(".relation-group").nth(1).get_by_role("link", name="Billing").is_visible()
    screenshot(page, "entity-payments-domain")


def test_the_table_on_a_phone(live_server, page, sign_in, screenshot, browsed_catalog):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, "dev@example.com")
    page.goto(f"{live_server.url}/catalog/Service/")
    assert row_titles(page)[0] == "Billing"
    # The table scrolls inside its wrapper; the page itself does not scroll sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "phone-service-table")
    page.get_by_role("link", name="Checkout", exact=True).click()
    page.wait_for_url(re.compile(r"/catalog/Service/checkout/$"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "phone-entity-checkout")


def test_save_a_view_and_open_it_again(live_server, page, sign_in, screenshot, browsed_catalog):
    sign_in(page, "dev@example.com")
    page.goto(f"{live_server.url}/catalog/Service/?f.language=Python&sort=-replicas")
    assert row_titles(page) == ["Billing", "Ledger", "Notifications"]
    page.get_by_text("Save this view", exact=True).click()
    page.get_by_label("Name").fill("Python, busiest first")
    page.get_by_label("Share with everyone who can see this blueprint").check()
    page.get_by_role("button", name="Save view").click()
    page.wait_for_load_state()
    assert "Saved the view “Python, busiest first”, shared" in page.locator(".messages").inner_text()
    screenshot(page, "view-saved")

    page.goto(f"{live_server.url}/catalog/Service/")
    assert len(row_titles(page)) == 5
    page.get_by_role("link", name="Python, busiest first").click()
    page.wait_for_load_state()
    assert row_titles(page) == ["Billing", "Ledger", "Notifications"]
    screenshot(page, "view-opened")
    page.get_by_role("button", name="Delete the view Python, busiest first").click()
    page.wait_for_load_state()
    assert "Deleted the view" in page.locator(".messages").inner_text()
    assert page.get_by_role("link", name="Python, busiest first").count() == 0
