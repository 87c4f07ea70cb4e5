"""Integrations in the Django admin (issue 13): the mapping config edited as JSON and validated at the field
by the service, "Resync now", and the page's resyncs with their counts, log lines and kind examples."""
import json

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from catalog.models import Integration, IntegrationKindExample
from catalog.services.integrations import (integration_create, integration_kind_examples_record,
                                           integration_kind_metrics_record, integration_logs_ingest,
                                           integration_resync_state_update)
from portal.actor import Actor, AuditOrigin
from tests.factories import BlueprintFactory

pytestmark = pytest.mark.django_db


def mapping(blueprint, identifier=".id"):
    return {"kind": "svc", "selector": {"query": "true"},
            "port": {"entity": {"mappings": {"identifier": identifier, "blueprint": f'"{blueprint}"'}}}}


@pytest.fixture
def integration(db):
    BlueprintFactory(identifier="service", title="Service", schema={"properties": {}})
    integration = integration_create(actor=Actor.system(), data={
        "installationId": "gh", "installationAppType": "github", "version": "1.0.0",
        "config": {"resources": [mapping("service")]}})
    integration_resync_state_update(actor=Actor.system(), integration=integration,
                                    data={"status": "running", "lastResyncStart": "2026-12-04T03:00:00Z"})
    integration_kind_metrics_record(integration=integration, event_id="e1", kind="svc-0",
                                    metrics={"metrics": {"object_count": {"load": {"loaded": 7}}}})
    integration_resync_state_update(actor=Actor.system(), integration=integration,
                                    data={"status": "completed", "lastResyncEnd": "2026-12-04T03:01:00Z"})
    integration_logs_ingest(integration=integration, data={"logs": [{"message": "Resync finished successfully",
                                                                     "level": "INFO"}]})
    integration_kind_examples_record(integration=integration, kind="svc", data={"examples": [{"id": "cart-api"}]})
    return Integration.objects.get()


def change_url(integration):
    return reverse("admin:catalog_integration_change", args=[integration.pk])


def test_the_page_shows_type_version_resyncs_with_counts_logs_and_examples(staff, integration):
    response = staff.get(change_url(integration))

    assert response.status_code == 200
    page = response.content.decode()
    for text in ("github", "1.0.0", "completed", "&quot;loaded&quot;:7", "Resync finished successfully", "cart-api"):
        assert text in page, text


def test_a_broken_mapping_is_refused_on_the_config_field(staff, integration):
    broken = {"resources": [mapping("service"), mapping("service", identifier=".id | (")]}

    response = staff.post(change_url(integration), {"config": json.dumps(broken)})

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["config"]
    assert errors["config"][0].startswith("config.resources[1].port.entity.mappings.identifier: jq does not compile")
    assert Integration.objects.get().config == {"resources": [mapping("service")]}


def test_an_unknown_blueprint_is_refused_on_the_config_field(staff, integration):
    response = staff.post(change_url(integration), {"config": json.dumps({"resources": [mapping("nowhere")]})})

    errors = response.context["adminform"].form.errors
    assert errors["config"] == ["config.resources[0].port.entity.mappings.blueprint: blueprint 'nowhere' does not exist"]


def test_a_valid_mapping_is_saved_through_the_service(staff, integration):
    config = {"resources": [mapping("service", identifier=".name")], "entityDeletionThreshold": 0.5}

    response = staff.post(change_url(integration), {"config": json.dumps(config)})

    assert response.status_code == 302
    assert Integration.objects.get().config == config
    event = AuditEvent.objects.get(verb="catalog.integration.config_updated")
    assert event.origin == AuditOrigin.ADMIN and event.diff["after"]["config"] == config


def test_resync_now_asks_the_integration_to_resync(staff, integration):
    response = staff.post(reverse("admin:catalog_integration_changelist"),
                          {"action": "resync_now", "_selected_action": [integration.pk]})

    assert response.status_code == 302
    assert Integration.objects.get().resync_requested_at is not None
    assert AuditEvent.objects.get(verb="catalog.integration.resync_requested").origin == AuditOrigin.ADMIN
    assert IntegrationKindExample.objects.count() == 1
