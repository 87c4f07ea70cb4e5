"""Backstage locations read over HTTP — a URL under the allow-list and a GitHub organization discovered through a
fake GitHub on 127.0.0.1 — the one-off command, and beat's refresh of the locations that are due."""
import datetime

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.models import AuditEvent
from catalog.models import BackstageLocation
from catalog.services.backstage import backstage_blueprints_install, backstage_location_refresh, backstage_location_register
from catalog.tasks import backstage_location_refresh_task, backstage_locations_refresh_task
from tests.support.backstage import (A, C, EXPECTED_ENTITIES, EXPECTED_ERRORS, FIXTURES, G, R, U, edges, entity_keys,
                                     error_keys)

pytestmark = pytest.mark.django_db
ORG, TOKEN = "example-org", "ghp_backstage_test"


@pytest.fixture
def backstage_over_loopback(settings, system):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
    backstage_blueprints_install(actor=system)


@pytest.fixture
def fake_github_org(httpserver, settings, backstage_over_loopback):
    """A GitHub whose organization has a repository with the services' descriptor, one whose descriptor names a
    Location in the same repository, one without a descriptor, and an archived one (never read)."""
    settings.GITHUB_API_URL = httpserver.url_for("/api/v3").rstrip("/")
    settings.GITHUB_TOKEN = TOKEN
    raw = {"Accept": "application/vnd.github.raw", "Authorization": f"Bearer {TOKEN}"}
    repos = [{"name": "cart"}, {"name": "platform"}, {"name": "no-descriptor"}, {"name": "old", "archived": True}]
    httpserver.expect_request(f"/api/v3/orgs/{ORG}/repos", query_string="per_page=100&page=1",
                              headers={"Authorization": f"Bearer {TOKEN}"}).respond_with_json(repos[:2])
    httpserver.expect_request(f"/api/v3/orgs/{ORG}/repos", query_string="per_page=100&page=2").respond_with_json(repos[2:])
    httpserver.expect_request(f"/api/v3/orgs/{ORG}/repos", query_string="per_page=100&page=3").respond_with_json([])
    contents = f"/api/v3/repos/{ORG}/%s/contents/"
    httpserver.expect_request(contents % "cart" + "catalog-info.yaml", headers=raw).respond_with_data(
        (FIXTURES / "services" / "catalog-info.yaml").read_text())
    httpserver.expect_request(contents % "platform" + "catalog-info.yaml", headers=raw).respond_with_data(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: platform}\nspec:\n  target: ./teams/org.yaml\n")
    httpserver.expect_request(contents % "platform" + "teams/org.yaml", headers=raw).respond_with_data(
        (FIXTURES / "org.yaml").read_text())
    httpserver.expect_request(contents % "no-descriptor" + "catalog-info.yaml").respond_with_data("Not Found", status=404)
    return httpserver


def test_an_organization_is_discovered_repository_by_repository(system, fake_github_org):
    location = backstage_location_register(actor=system, data={"identifier": "github", "type": "github", "target": ORG})
    location = backstage_location_refresh(actor=system, location=location)
    assert location.errors == [] and location.files_read == 3
    assert {(C, "cart"), (C, "pricing"), (A, "cart-api"), (R, "cart-db"), (G, "engineering"), (U, "alice"),
            (U, "bob")} <= entity_keys(datasource=location.datasource)
    assert (C, "cart", "providesApi", A, "cart-api") in edges()
    assert not any("/old/" in request.path for request, _ in fake_github_org.log)


def test_an_organization_that_cannot_be_listed_removes_nothing(system, fake_github_org, settings):
    location = backstage_location_refresh(actor=system, location=backstage_location_register(
        actor=system, data={"identifier": "github", "type": "github", "target": ORG}))
    settings.GITHUB_TOKEN = "revoked"  # the fake answers 500 to a request it does not expect
    location = backstage_location_refresh(actor=system, location=location)
    assert location.entity_count > 0 and location.errors[0]["field"] == "target"
    assert "organization cannot be listed" in location.errors[0]["message"]


def test_a_url_location_reads_under_its_prefix_only(system, httpserver, settings, backstage_over_loopback):
    for name in ("all.yaml", "org.yaml", "domains.yaml", "services/catalog-info.yaml", "platform/catalog-info.yaml",
                 "platform/apis/metrics.yaml", "invalid.yaml"):
        httpserver.expect_request(f"/catalog/{name}").respond_with_data((FIXTURES / name).read_text())
    settings.BACKSTAGE_URL_ALLOWED_PREFIXES = [httpserver.url_for("/catalog/")]
    location = backstage_location_register(actor=system, data={
        "identifier": "url", "type": "url", "target": httpserver.url_for("/catalog/all.yaml")})
    location = backstage_location_refresh(actor=system, location=location)
    assert entity_keys(datasource=location.datasource) == EXPECTED_ENTITIES
    assert error_keys(location.errors, httpserver.url_for("/catalog")) == EXPECTED_ERRORS  # the cycle back to all.yaml is read once

    settings.BACKSTAGE_URL_ALLOWED_PREFIXES = [httpserver.url_for("/catalog/services/")]
    location = backstage_location_refresh(actor=system, location=location)
    assert "not under a prefix in BACKSTAGE_URL_ALLOWED_PREFIXES" in location.errors[0]["message"]
    assert entity_keys(datasource=location.datasource) == EXPECTED_ENTITIES  # the root was not read: nothing removed


def test_a_url_to_a_private_address_is_refused_by_the_outbound_guard(system, httpserver, settings, backstage_over_loopback):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    settings.BACKSTAGE_URL_ALLOWED_PREFIXES = [httpserver.url_for("/")]
    location = backstage_location_refresh(actor=system, location=backstage_location_register(
        actor=system, data={"identifier": "url", "type": "url", "target": httpserver.url_for("/all.yaml")}))
    assert "refused" in location.errors[0]["message"] and httpserver.log == []


def test_the_command_imports_and_lists_what_it_could_not(capsys, db):
    with pytest.raises(CommandError, match="5 descriptors or files could not be imported"):
        call_command("backstage_import", str(FIXTURES / "all.yaml"))
    out, err = capsys.readouterr()
    assert "Installed the Backstage blueprints" in out and f"Imported {len(EXPECTED_ENTITIES)} entities." in out
    assert "invalid.yaml document 1: spec.owner: is required" in err
    assert entity_keys(is_stub=False) == EXPECTED_ENTITIES


def test_the_command_imports_a_clean_file_quietly(capsys, db):
    call_command("backstage_import", str(FIXTURES / "domains.yaml"))
    assert "Imported 3 entities." in capsys.readouterr().out


def test_beat_refreshes_the_locations_that_are_due(system, settings, backstage_over_loopback, eager, tmp_path):
    settings.BACKSTAGE_FILE_ROOTS = [str(FIXTURES)]
    due = backstage_location_register(actor=system, data={"identifier": "due", "type": "file",
                                                          "target": str(FIXTURES / "domains.yaml")})
    fresh = backstage_location_register(actor=system, data={"identifier": "fresh", "type": "file",
                                                            "target": str(FIXTURES / "org.yaml"),
                                                            "refreshIntervalMinutes": 60})
    BackstageLocation.objects.filter(pk=fresh.pk).update(last_refresh_at=timezone.now() - datetime.timedelta(minutes=59))
    assert backstage_locations_refresh_task() == 1
    due.refresh_from_db()
    fresh.refresh_from_db()
    assert due.entity_count == 3 and fresh.entity_count == 0
    BackstageLocation.objects.filter(pk=fresh.pk).update(last_refresh_at=timezone.now() - datetime.timedelta(minutes=61))
    assert backstage_locations_refresh_task() == 1
    fresh.refresh_from_db()
    assert fresh.entity_count == 4
    backstage_location_refresh_task(fresh.pk)  # queued twice during a long refresh: the second copy finds it done
    assert AuditEvent.objects.filter(verb="catalog.backstage_location.refreshed", identifier="fresh").count() == 1
