"""Ocean integrations as a resource (issue 13): the /v1/integration routes Ocean's client calls, with the
shapes it reads, config validation at the field, the resync history, logs, metrics and kind examples."""
import pytest

from audit.models import AuditEvent
from catalog.models import Integration, IntegrationKindExample, IntegrationLog, IntegrationResync
from tests.factories import BlueprintFactory

pytestmark = pytest.mark.django_db
OCEAN = {"HTTP_USER_AGENT": "port-ocean/fake/0.1.0/my-fake/exporter"}


def mapping(kind, blueprint, identifier=".id"):
    return {"kind": kind, "selector": {"query": "true"},
            "port": {"entity": {"mappings": {"identifier": identifier, "title": ".name", "blueprint": f'"{blueprint}"',
                                             "properties": {"size": ".size"}, "relations": {"team": ".team"}}}}}


def config(*resources):
    return {"deleteDependentEntities": True, "createMissingRelatedEntities": True, "enableMergeEntity": True,
            "entityDeletionThreshold": 0.9, "resources": list(resources)}


@pytest.fixture
def plain_blueprints(db):
    for identifier in ("service", "team"):
        BlueprintFactory(identifier=identifier, title=identifier,
                         schema={"properties": {}})


def create(api, identifier="my-fake", **extra):
    body = {"installationId": identifier, "installationAppType": "fake", "version": "0.1.0",
            "changelogDestination": {"type": "WEBHOOK"}, "config": config(mapping("svc", "service")),
            "actionsProcessingEnabled": False, "createPortResourcesOrigin": "Ocean", **extra}
    return api.post("/v1/integration", body, format="json", **OCEAN)


def test_an_unknown_integration_answers_the_404_envelope(admin_api):
    response = admin_api.get("/v1/integration/my-fake?oceanCoreVersion=0.56.2&isPolling=false")

    assert response.status_code == 404
    assert response.json() == {"ok": False, "error": "not_found", "message": "Integration 'my-fake' was not found."}


def test_create_answers_the_integration_with_its_ingest_urls_and_is_audited(admin_api):
    response = create(admin_api)

    assert response.status_code == 201, response.json()
    integration = response.json()["integration"]
    assert integration["installationId"] == "my-fake" and integration["installationAppType"] == "fake"
    assert integration["config"]["resources"][0]["kind"] == "svc"
    assert integration["actionsProcessingEnabled"] is False and integration["createPortResourcesOrigin"] == "Ocean"
    assert integration["logAttributes"] == {"ingestUrl": "http://testserver/v1/integration/my-fake/logs"}
    assert integration["metricAttributes"] == {"ingestUrl": "http://testserver/v1/integration/my-fake/metrics"}
    assert integration["resyncState"]["status"] is None
    event = AuditEvent.objects.get(verb="catalog.integration.created")
    assert event.identifier == "my-fake" and event.actor_type == "client"
    assert event.diff["after"]["config"]["resources"][0]["kind"] == "svc"
    fetched = admin_api.get("/v1/integration/my-fake", {"oceanCoreVersion": "0.56.2", "isPolling": "false"}).json()
    assert fetched["integration"]["installationId"] == "my-fake"
    assert create(admin_api).status_code == 409


def test_patch_keeps_oceans_keys_and_audits_the_change(admin_api):
    create(admin_api)

    response = admin_api.patch("/v1/integration/my-fake", {"version": "0.2.0", "processingMode": "default",
                                                           "arePortResourcesInitialized": True}, format="json", **OCEAN)

    assert response.status_code == 200
    integration = response.json()["integration"]
    assert integration["version"] == "0.2.0" and integration["processingMode"] == "default"
    assert integration["arePortResourcesInitialized"] is True and integration["actionsProcessingEnabled"] is False
    event = AuditEvent.objects.get(verb="catalog.integration.updated")
    assert event.diff["before"]["version"] == "0.1.0" and event.diff["after"]["version"] == "0.2.0"


def test_oceans_default_mapping_may_name_blueprints_it_creates_next_but_a_persons_may_not(admin_api, plain_blueprints):
    assert create(admin_api, config=config(mapping("svc", "service"), mapping("repo", "repository"))).status_code == 201

    response = admin_api.patch("/v1/integration/my-fake/config",
                               {"config": config(mapping("svc", "service"), mapping("repo", "repository"))}, format="json")

    assert response.status_code == 422
    assert response.json()["message"] == ("config.resources[1].port.entity.mappings.blueprint: "
                                          "blueprint 'repository' does not exist")
    assert not AuditEvent.objects.filter(verb="catalog.integration.config_updated").exists()


@pytest.mark.parametrize("broken, path", [
    ({"identifier": ".id | ("}, "config.resources[2].port.entity.mappings.identifier"),
    ({"properties": {"size": ".size +"}}, "config.resources[2].port.entity.mappings.properties.size"),
    ({"relations": {"team": "[.team"}}, "config.resources[2].port.entity.mappings.relations.team"),
    ({"identifier": 5}, "config.resources[2].port.entity.mappings.identifier"),
])
def test_a_broken_jq_mapping_is_refused_naming_its_path(admin_api, plain_blueprints, broken, path):
    create(admin_api)
    third = mapping("c", "service")
    mappings = third["port"]["entity"]["mappings"]
    for key, value in broken.items():
        mappings[key] = {**mappings[key], **value} if isinstance(value, dict) else value

    response = admin_api.patch("/v1/integration/my-fake/config",
                               {"config": config(mapping("a", "service"), mapping("b", "team"), third)}, format="json")

    assert response.status_code == 422, response.json()
    assert response.json()["message"].startswith(f"{path}: ")
    assert Integration.objects.get().config["resources"][0]["kind"] == "svc"


def test_a_broken_selector_and_a_bad_threshold_are_refused_naming_them(admin_api, plain_blueprints):
    create(admin_api)
    bad_selector = mapping("a", "service")
    bad_selector["selector"]["query"] = ".x ==="

    first = admin_api.patch("/v1/integration/my-fake/config", {"config": config(bad_selector)}, format="json")
    second = admin_api.patch("/v1/integration/my-fake/config",
                             {"config": {**config(), "entityDeletionThreshold": 2}}, format="json")

    assert first.status_code == 422 and first.json()["message"].startswith("config.resources[0].selector.query: ")
    assert second.status_code == 422
    assert second.json()["message"] == "config.entityDeletionThreshold: must be a number from 0 to 1"


def test_a_valid_config_is_stored_and_audited(admin_api, plain_blueprints):
    create(admin_api)

    response = admin_api.patch("/v1/integration/my-fake/config", {"config": config(mapping("b", "team"))}, format="json")

    assert response.status_code == 200
    assert response.json()["integration"]["config"]["resources"][0]["kind"] == "b"
    assert AuditEvent.objects.filter(verb="catalog.integration.config_updated", identifier="my-fake").count() == 1


def test_resync_states_build_the_history_and_answer_updated_at(admin_api):
    create(admin_api)

    running = admin_api.patch("/v1/integration/my-fake/resync-state", {
        "status": "running", "lastResyncEnd": None, "lastResyncStart": "2026-12-04T03:00:00.123456+00:00",
        "nextResync": None, "intervalInMinuets": None}, format="json")
    done = admin_api.patch("/v1/integration/my-fake/resync-state", {
        "status": "completed", "lastResyncEnd": "2026-12-04T03:01:00+00:00", "nextResync": None}, format="json")

    assert running.status_code == 200 and done.status_code == 200
    state = done.json()["integration"]["resyncState"]
    assert state["status"] == "completed" and state["lastResyncStart"] == "2026-12-04T03:00:00.123Z"
    assert state["lastResyncEnd"] == "2026-12-04T03:01:00.000Z" and state["updatedAt"]
    resync = IntegrationResync.objects.get()
    assert (resync.status, resync.started_at.isoformat(), resync.ended_at.isoformat()) == (
        "completed", "2026-12-04T03:00:00.123456+00:00", "2026-12-04T03:01:00+00:00")
    assert AuditEvent.objects.filter(verb="catalog.integration.resync_state_updated").count() == 2


def test_an_unknown_resync_status_is_422(admin_api):
    create(admin_api)

    response = admin_api.patch("/v1/integration/my-fake/resync-state", {"status": "sleeping"}, format="json")

    assert response.status_code == 422
    assert response.json()["message"] == "status: must be one of running, completed, failed, aborted, got 'sleeping'"
    assert not IntegrationResync.objects.exists()


def test_resync_request_is_served_to_polling_integrations(admin_api):
    create(admin_api)
    assert admin_api.get("/v1/integration/my-fake/resync-request").json() == {"ok": True, "request": None}

    asked = admin_api.post("/v1/integration/my-fake/resync-request")

    assert asked.status_code == 200
    polled = admin_api.get("/v1/integration/my-fake/resync-request").json()
    assert polled["request"]["updatedAt"] == asked.json()["request"]["updatedAt"]
    assert AuditEvent.objects.filter(verb="catalog.integration.resync_requested").count() == 1


def test_logs_metrics_and_examples_are_kept(admin_api):
    create(admin_api)
    admin_api.patch("/v1/integration/my-fake/resync-state", {"status": "running"}, format="json")
    logs = {"logs": [{"message": "Resync started", "level": "INFO", "timestamp": "2026-12-04T03:00:00.000000Z",
                      "extra": {"kind": "svc"}}]}

    assert admin_api.post("/v1/integration/my-fake/logs", logs, format="json").status_code == 200
    metric = {"eventId": "e1", "kindIdentifier": "svc-0", "metrics": {"object_count": {"load": {"loaded": 3}}}}
    put = admin_api.put("/v1/integration/my-fake/metrics/syncMetrics/resync/e1/kind/svc-0",
                        {"syncKindMetrics": metric}, format="json")
    examples = admin_api.post("/v1/integration/my-fake/kinds/svc/examples", {"examples": [{"id": "a"}]}, format="json")
    heartbeat = admin_api.post("/v1/integration/my-fake/metrics/heartbeat", {"eventId": "e1"}, format="json")

    assert put.status_code == 200 and examples.status_code == 200 and heartbeat.status_code == 200
    line = IntegrationLog.objects.get()
    assert (line.message, line.level, line.extra) == ("Resync started", "INFO", {"kind": "svc"})
    assert IntegrationResync.objects.get().metrics["svc-0"]["metrics"] == {"object_count": {"load": {"loaded": 3}}}
    assert IntegrationKindExample.objects.get(kind="svc").examples == [{"id": "a"}]
    bad = admin_api.post("/v1/integration/my-fake/logs", {"logs": [{"level": "INFO"}]}, format="json")
    assert bad.status_code == 422 and bad.json()["message"] == "logs[0].message: is required, a string"


def test_provision_enabled_answers_none(admin_api):
    response = admin_api.get("/v1/integration/provision-enabled")

    assert response.json() == {"ok": True, "integrations": []}


def test_only_admins_may_use_integrations(member_api, admin_api):
    create(admin_api)

    for method, path in [("get", "/v1/integration/my-fake"), ("post", "/v1/integration"),
                         ("patch", "/v1/integration/my-fake/config"), ("get", "/v1/integration/my-fake/resync-request")]:
        response = getattr(member_api, method)(path, {}, format="json")
        assert response.status_code == 403 and response.json()["error"] == "forbidden", path


def _queries(api, path, method="get", body=None):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = getattr(api, method)(path, body, format="json") if body is not None else getattr(api, method)(path)
    assert response.status_code == 200, response.json()
    return len(captured)


def test_the_integration_list_query_count_does_not_grow(admin_api):
    create(admin_api, "one")
    one = _queries(admin_api, "/v1/integration")
    for i in range(5):
        create(admin_api, f"more-{i}")

    assert _queries(admin_api, "/v1/integration") == one
