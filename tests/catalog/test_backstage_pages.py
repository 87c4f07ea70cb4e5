"""Backstage locations in the admin (registered, changed, refreshed, given the blueprints, deleted through the
services) and on their pages (last refresh, entity count, errors; "Refresh now")."""
import re

import pytest

from audit.models import AuditEvent
from catalog.models import BackstageLocation, Blueprint
from catalog.services.backstage import backstage_blueprints_install, backstage_location_refresh, backstage_location_register
from tests.factories import UserFactory
from tests.support.admin import form_errors, url
from tests.support.backstage import EXPECTED_ENTITIES, EXPECTED_ERRORS, catalog_copy, entity_keys
from tests.support.pages import Page

pytestmark = pytest.mark.django_db


@pytest.fixture
def backstage_files(tmp_path, settings):
    settings.BACKSTAGE_FILE_ROOTS = [str(tmp_path)]
    return catalog_copy(tmp_path)


def form(**overrides):
    return {"identifier": "test-catalog", "type": "file", "target": "/srv/catalog/all.yaml",
            "catalog_path": "catalog-info.yaml", "refresh_interval_minutes": "30", **overrides}


def test_the_admin_registers_changes_and_deletes_through_the_services(admin_client, backstage_files):
    answer = admin_client.post(url(BackstageLocation, "add"), form(target=str(backstage_files)))
    assert answer.status_code == 302, form_errors(answer)
    location = BackstageLocation.objects.get()
    assert location.created_by == "admin@example.com"
    answer = admin_client.post(url(BackstageLocation, "change", location.pk),
                               form(target=str(backstage_files), refresh_interval_minutes="5"))
    assert answer.status_code == 302
    location.refresh_from_db()
    assert location.refresh_interval_minutes == 5
    verbs = list(AuditEvent.objects.filter(resource_type="backstage_location").order_by("id").values_list("verb", "origin"))
    assert verbs == [("catalog.backstage_location.created", "ADMIN"), ("catalog.backstage_location.updated", "ADMIN")]

    action = {"_selected_action": [location.pk]}
    admin_client.post(url(BackstageLocation, "changelist"), {**action, "action": "refresh_now"})
    assert not entity_keys()  # refused: no blueprints yet, said on the page
    admin_client.post(url(BackstageLocation, "changelist"), {**action, "action": "install_blueprints"})
    assert Blueprint.objects.filter(identifier="backstage_component").exists()
    answer = admin_client.post(url(BackstageLocation, "changelist"), {**action, "action": "refresh_now"}, follow=True)
    assert f"est-catalog: {len(EXPECTED_ENTITIES)} entities, {len(EXPECTED_ERRORS)} errors." in answer.content.decode()  # capfirst
    page = admin_client.get(url(BackstageLocation, "change", location.pk)).content.decode()
    assert "is not a kind the portal imports" in page and "spec.owner" in page

    admin_client.post(url(BackstageLocation, "delete", location.pk), {"post": "yes"})
    assert not BackstageLocation.objects.exists() and not entity_keys()


@pytest.mark.parametrize("overrides, field", [({"identifier": "a b"}, "identifier"), ({"target": "relative.yaml"}, "target"),
                                              ({"refresh_interval_minutes": "0"}, "refresh_interval_minutes")])
def test_the_admin_puts_a_refusal_on_its_field(admin_client, overrides, field):
    errors = form_errors(admin_client.post(url(BackstageLocation, "add"), form(**overrides)))
    assert field in errors and not BackstageLocation.objects.exists()


def test_the_location_page_shows_its_refresh_and_errors(admin_client, backstage_files, system):
    backstage_blueprints_install(actor=system)
    location = backstage_location_register(actor=system, data={"identifier": "test-catalog", "type": "file",
                                                               "target": str(backstage_files)})
    page = admin_client.get("/backstage/test-catalog/").content.decode()
    assert "never" in page and "<td><code>spec.owner</code></td>" not in page

    answer = admin_client.post("/backstage/test-catalog/", follow=True)
    assert f"Refreshed: {len(EXPECTED_ENTITIES)} entities, {len(EXPECTED_ERRORS)} errors." in answer.content.decode()
    page = Page(answer.content.decode())
    assert "<td><code>spec.owner</code></td>" in page.html and "invalid.yaml" in page.html
    assert f"<dd>{len(EXPECTED_ENTITIES)}</dd>" in page.html

    listing = admin_client.get("/backstage/").content.decode()
    assert 'href="/backstage/test-catalog/"' in listing and location.target in listing


def test_only_admins_see_locations(client, system):
    backstage_location_register(actor=system, data={"identifier": "org", "type": "github", "target": "example"})
    client.force_login(UserFactory(email="dev@example.com"))
    assert client.get("/backstage/").status_code == 403
    assert client.post("/backstage/org/").status_code == 403
    assert BackstageLocation.objects.get().last_refresh_at is None


def test_an_unknown_location_page_is_404(admin_client):
    assert admin_client.get("/backstage/nope/").status_code == 404


def test_the_location_list_does_not_grow_in_queries(admin_client, system, django_assert_max_num_queries, settings):
    settings.BACKSTAGE_FILE_ROOTS = ["/nonexistent"]  # registered there, read from nowhere: each refresh reports why
    for i in range(15):
        backstage_location_refresh(actor=system, location=backstage_location_register(
            actor=system, data={"identifier": f"l{i}", "type": "file", "target": f"/nonexistent/{i}.yaml"}))
    with django_assert_max_num_queries(12):
        assert admin_client.get("/backstage/").content.decode().count('href="/backstage/l') == 15


def test_an_entity_of_another_namespace_has_its_page_with_both_sides_of_its_relations(admin_client, backstage_files,
                                                                                      system):
    backstage_blueprints_install(actor=system)
    backstage_location_refresh(actor=system, location=backstage_location_register(
        actor=system, data={"identifier": "test-catalog", "type": "file", "target": str(backstage_files)}))
    page = admin_client.get("/catalog/backstage_group/infra/sre/")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.content.decode()))
    assert "Backstage User by Member of (2) Bob Carol Contractor" in text  # incoming: memberOf from two namespaces
    assert "Child of (backstage_group) : Engineering" in text  # outgoing, to the default namespace
