"""Saved views on a blueprint table: save the filters, search, sort and columns under a name, open them again,
share them, replace and delete them; refused names come back at the field; each change is audited."""
import re

import pytest

from audit.models import AuditEvent
from catalog.models import SavedView
from tests.factories import UserFactory
from tests.support.catalog_pages import _queries, headers, table_rows

pytestmark = pytest.mark.django_db

FILTERED = "/catalog/Service/?f.language=Python&sort=-replicas&columns=replicas,notes&after=abc"


def saved_links(response):
    """(name, href) of the saved views listed on the page."""
    html = response.content.decode()
    section = re.search(r'<ul class="saved-view-list">(.*?)</ul>', html, re.S)
    return [(name, href.replace("&amp;", "&"))
            for href, name in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', section.group(1))] if section else []


def test_a_view_keeps_filters_sort_and_columns_and_opens_again(dev):
    response = dev.post(FILTERED, {"name": "Python services"})
    assert response.status_code == 302
    view = SavedView.objects.get()
    assert (view.name, view.query, view.columns, view.shared) == (
        "Python services", "f.language=Python&sort=-replicas", ["replicas", "notes"], False)  # no paging cursor
    assert response["Location"] == "/catalog/Service/?f.language=Python&sort=-replicas&columns=replicas%2Cnotes"

    opened = dev.get(response["Location"])
    assert "Saved the view “Python services”." in opened.content.decode()
    assert table_rows(opened) == ["billing"] and headers(opened) == ["Title", "Replicas", "Notes"]
    assert 'aria-current="true">Python services</a>' in opened.content.decode()

    dev.get("/catalog/Service/?columns=default")  # another column choice in between
    page = dev.get("/catalog/Service/")
    assert saved_links(page) == [("Python services", response["Location"])]
    assert 'aria-current="true"' not in page.content.decode()
    reopened = dev.get(saved_links(page)[0][1])
    assert table_rows(reopened) == ["billing"] and headers(reopened) == ["Title", "Replicas", "Notes"]

    event = AuditEvent.objects.get(verb="catalog.saved_view.saved")
    assert (event.actor, event.identifier, event.blueprint) == ("dev@example.com", "Python services", "Service")


def test_the_same_name_replaces_the_view(dev):
    dev.post("/catalog/Service/?f.language=Go", {"name": "Mine"})
    dev.post("/catalog/Service/?f.language=Rust", {"name": "Mine", "shared": "on"})
    view = SavedView.objects.get()
    assert (view.query, view.shared) == ("f.language=Rust", True)
    assert list(AuditEvent.objects.filter(verb="catalog.saved_view.saved").order_by("id").values_list("action", flat=True)) == [
        "CREATE", "UPDATE"]


@pytest.mark.parametrize("name, message", [("", "is required, at most 100 characters"),
                                           ("x" * 101, "is required, at most 100 characters")])
def test_a_refused_name_comes_back_at_its_field_on_the_same_table(dev, name, message):
    response = dev.post("/catalog/Service/?f.language=Python", {"name": name})
    assert response.status_code == 422
    html = response.content.decode()
    assert f'<div class="error" id="save-view-name-error">{message}</div>' in html
    assert 'aria-describedby="save-view-name-error"' in html and "<details class=\"card panel\" open>" in html
    assert table_rows(response) == ["billing"]  # the table as it was
    assert not SavedView.objects.exists()


def test_shared_views_are_listed_to_others_and_only_the_owner_deletes(client, catalog):
    client.login(username="dev@example.com", password="pw")
    client.post("/catalog/Service/?f.language=Go", {"name": "Go, shared", "shared": "on"})
    client.post("/catalog/Service/?f.language=Rust", {"name": "Rust, mine"})
    UserFactory(email="other@example.com", teams=["platform"])
    client.login(username="other@example.com", password="pw")
    page = client.get("/catalog/Service/")
    assert [name for name, _ in saved_links(page)] == ["Go, shared"]
    assert "shared by dev@example.com" in page.content.decode()
    assert 'name="delete"' not in page.content.decode()  # not theirs: no delete button
    shared = SavedView.objects.get(name="Go, shared")
    refused = client.post("/catalog/Service/", {"delete": shared.pk}, follow=True)
    assert "only they may delete it" in refused.content.decode() and SavedView.objects.count() == 2

    client.login(username="dev@example.com", password="pw")
    deleted = client.post("/catalog/Service/", {"delete": shared.pk}, follow=True)
    assert "Deleted the view “Go, shared”." in deleted.content.decode()
    assert list(SavedView.objects.values_list("name", flat=True)) == ["Rust, mine"]
    assert AuditEvent.objects.filter(verb="catalog.saved_view.deleted", identifier="Go, shared").count() == 1


def test_views_are_per_blueprint_and_the_list_costs_no_query_per_view(dev):
    dev.post("/catalog/Domain/", {"name": "Domains"})
    assert saved_links(dev.get("/catalog/Service/")) == []
    url = "/catalog/Service/"
    dev.post(url, {"name": "one", "shared": "on"})
    first = _queries(dev, url)
    for i in range(10):
        UserFactory(email=f"u{i}@example.com", teams=["platform"])
        dev.post(f"{url}?f.replicas={i}", {"name": f"view {i}", "shared": "on"})
    assert len(saved_links(dev.get(url))) == 11
    assert _queries(dev, url) == first


def test_the_platform_team_lists_and_removes_views_in_the_admin(client, catalog):
    client.login(username="dev@example.com", password="pw")
    client.post("/catalog/Service/?f.language=Go", {"name": "Stale"})
    UserFactory(email="admin@example.com", admin=True)
    client.login(username="admin@example.com", password="pw")
    listing = client.get("/admin/catalog/savedview/")
    assert listing.status_code == 200 and "Stale" in listing.content.decode()
    view = SavedView.objects.get()
    assert client.get(f"/admin/catalog/savedview/{view.pk}/change/").status_code == 200  # read-only
    response = client.post("/admin/catalog/savedview/", {"action": "delete_selected", "_selected_action": [view.pk],
                                                         "post": "yes"})
    assert response.status_code == 302 and not SavedView.objects.exists()
    event = AuditEvent.objects.get(verb="catalog.saved_view.deleted")
    assert (event.actor, event.origin) == ("admin@example.com", "ADMIN")
