import json

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from catalog.models import Blueprint, Entity
from catalog.selectors.blueprints import blueprint_definition
from catalog.selectors.search_pages import written_documents
from catalog.services.permissions import blueprint_permissions_update
from portal.api import authentication
from portal.errors import NotFound
from portal.models import ApiClient
from tests.support.api import api_for
from tests.support.deployments import install_contract, lock, report

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployment_catalog(db, system):
    return install_contract(system)


RUNNING_PATH = "/v1/blueprints/runningService/entities/CartService-production"


def post(api, body):
    return api.post("/v1/deployments", body, format="json")


def test_first_deploy_creates_running_service_then_updates_it(admin_api, deployment_catalog):
    response = post(admin_api, report(commitTime="2025-01-01T10:00:00Z"))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["ok"] is True
    deployment, running = body["deployment"], body["runningService"]
    assert deployment["blueprint"] == "deployment" and deployment["relations"] == {"runningService": "CartService-production"}
    assert deployment["properties"]["status"] == "success" and deployment["properties"]["deployedBy"] == "admin@example.com"
    assert deployment["properties"]["commitTime"] == "2025-01-01T10:00:00.000Z"
    assert running["identifier"] == "CartService-production"
    assert running["relations"] == {"service": "CartService", "environment": "production"}
    assert running["properties"]["version"] == "1.2.3" and running["properties"]["locked"] is False
    assert running["properties"]["environmentType"] == "production"
    assert AuditEvent.objects.filter(verb="catalog.entity.created", identifier="CartService-production").count() == 1

    second = post(admin_api, report(version="1.2.4", commitSha="def456", deployedBy="bot@example.com"))
    assert second.status_code == 201, second.json()
    assert second.json()["runningService"]["properties"]["version"] == "1.2.4"
    assert second.json()["runningService"]["properties"]["deployedBy"] == "bot@example.com"
    assert Entity.objects.filter(blueprint__identifier="runningService").count() == 1
    assert Entity.objects.filter(blueprint__identifier="deployment").count() == 2
    (updated,) = AuditEvent.objects.filter(verb="catalog.entity.updated", identifier="CartService-production")
    assert updated.diff["before"]["properties"]["version"] == "1.2.3"
    assert updated.diff["after"]["properties"]["version"] == "1.2.4"
    assert updated.actor == "admin@example.com"


def test_the_answer_is_what_get_answers(admin_api, deployment_catalog):
    for version in ("1.2.3", "1.2.4"):  # the running service created, then updated
        answer = post(admin_api, report(version=version)).json()
        assert answer["runningService"] == admin_api.get(RUNNING_PATH).json()["entity"]
        assert answer["deployment"] == admin_api.get(
            f"/v1/blueprints/deployment/entities/{answer['deployment']['identifier']}").json()["entity"]


def test_written_documents_reads_a_definition_changed_behind_the_process_afresh(admin_api, admin_user,
                                                                              deployment_catalog):
    """One statement for both documents over the definitions this process keeps; one changed since by a writer that
    never told this process is read afresh, the statement run again."""
    deployment = post(admin_api, report()).json()["deployment"]["identifier"]
    assert "tier" not in blueprint_definition("runningService").schema["properties"]  # kept as it was
    schema = Blueprint.objects.get(identifier="runningService").schema
    schema["properties"]["tier"] = {"type": "string"}
    Blueprint.objects.filter(identifier="runningService").update(schema=schema)
    with CaptureQueriesContext(connection) as captured:
        texts = written_documents([("deployment", deployment), ("runningService", "CartService-production")],
                                  user=admin_user)
    assert sum("written_documents" in q["sql"] for q in captured.captured_queries) == 2  # stale, then again
    assert [json.loads(text)["identifier"] for text in texts] == [deployment, "CartService-production"]
    assert json.loads(texts[1])["properties"]["tier"] is None
    assert json.loads(texts[1]) == admin_api.get(RUNNING_PATH).json()["entity"]
    with pytest.raises(NotFound):
        written_documents([("deployment", deployment), ("runningService", "nope")], user=admin_user)


def test_failed_deploy_is_recorded_but_keeps_the_running_version(admin_api, deployment_catalog):
    assert post(admin_api, report()).status_code == 201
    response = post(admin_api, report(version="2.0.0", status="failure"))
    assert response.status_code == 201, response.json()
    assert response.json()["deployment"]["properties"]["status"] == "failure"
    assert response.json()["runningService"]["properties"]["version"] == "1.2.3"


@pytest.mark.parametrize("body, field", [
    (report(service=None), "service"),
    (report(version=""), "version"),
    (report(commitSha=3), "commitSha"),
    (report(jobUrl="not a url"), "jobUrl"),
    (report(commitTime="yesterday"), "commitTime"),
    (report(status="exploded"), "status"),
    (report(extra=1), "extra"),
    (report(service="bad service"), "service"),
])
def test_validation_errors_name_the_field(admin_api, deployment_catalog, body, field):
    response = post(admin_api, body)
    assert response.status_code == 422, response.json()
    assert response.json()["ok"] is False and response.json()["error"] == "invalid_request"
    assert response.json()["message"].startswith(f"{field}:")
    assert not Entity.objects.filter(blueprint__identifier__in=["deployment", "runningService"]).exists()


def test_unknown_environment_and_service_are_404(admin_api, deployment_catalog):
    response = post(admin_api, report(environment="moon"))
    assert response.status_code == 404 and "'moon'" in response.json()["message"]
    assert response.json()["message"].startswith("environment:")
    response = post(admin_api, report(service="Nope"))
    assert response.status_code == 404
    assert response.json()["message"] == "service: 'Nope' is not a Component in the catalog"


def test_member_needs_register_on_deployment(member_user, deployment_catalog, system):
    api = api_for(member_user)
    response = post(api, report())
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    blueprint_permissions_update(actor=system, blueprint=deployment_catalog["deployment"],
                                 data={"entities": {"register": {"users": [member_user.email]}}})
    response = post(api_for(member_user), report())
    assert response.status_code == 201, response.json()
    assert response.json()["runningService"]["updatedBy"] == member_user.email


def test_service_lock_refuses_and_the_refusal_is_audited(admin_api, deployment_catalog, system):
    assert post(admin_api, report()).status_code == 201
    lock(system, deployment_catalog, "runningService", "CartService-production", reason="incident 42")
    response = post(admin_api, report(version="9.9.9"))
    assert response.status_code == 423
    assert response.json() == {"ok": False, "error": "locked", "message": response.json()["message"],
                               "lock": {"scope": "service", "reason": "incident 42", "by": "sre@example.com",
                                        "at": "2025-01-01T00:00:00.000Z"}}
    assert "incident 42" in response.json()["message"]
    assert Entity.objects.get(identifier="CartService-production").properties["version"] == "1.2.3"
    assert Entity.objects.filter(blueprint__identifier="deployment").count() == 1
    (refusal,) = AuditEvent.objects.filter(verb="catalog.deployment.refused")
    assert refusal.status == "FAILURE" and refusal.actor == "admin@example.com"
    assert refusal.identifier == "CartService-production" and refusal.diff["after"]["version"] == "9.9.9"
    assert refusal.context["lock"]["scope"] == "service"
    # Other services deploy to the same environment.
    assert post(admin_api, report(service="PaymentService")).status_code == 201


def test_environment_lock_refuses_every_service(admin_api, deployment_catalog, system):
    assert post(admin_api, report()).status_code == 201
    lock(system, deployment_catalog, "environment", "production", reason="release freeze")
    for service in ("CartService", "PaymentService"):
        response = post(admin_api, report(service=service, version="2.0.0"))
        assert response.status_code == 423, response.json()
        assert response.json()["lock"]["scope"] == "environment"
        assert response.json()["lock"]["reason"] == "release freeze"
    assert AuditEvent.objects.filter(verb="catalog.deployment.refused").count() == 2
    assert not Entity.objects.filter(identifier="PaymentService-production").exists()
    assert post(admin_api, report(environment="staging")).status_code == 201


def test_lock_endpoint(admin_api, member_api, deployment_catalog, system):
    url = "/v1/locks/CartService/production"
    response = admin_api.get(url)
    assert response.status_code == 200 and response.json() == {"ok": True, "locked": False}  # no running service yet
    assert post(admin_api, report()).status_code == 201
    assert member_api.get(url).json() == {"ok": True, "locked": False}
    lock(system, deployment_catalog, "runningService", "CartService-production", reason="incident")
    response = member_api.get(url)
    assert response.status_code == 423
    assert response.json()["error"] == "locked" and response.json()["lock"]["scope"] == "service"
    assert member_api.get("/v1/locks/PaymentService/production").status_code == 200
    lock(system, deployment_catalog, "environment", "production", reason="freeze")
    response = admin_api.get(url)
    assert response.status_code == 423 and response.json()["lock"]["scope"] == "environment"  # environment wins
    assert response.json()["lock"]["reason"] == "freeze"
    assert admin_api.get("/v1/locks/PaymentService/production").status_code == 423
    response = admin_api.get("/v1/locks/CartService/moon")
    assert response.status_code == 404 and response.json()["ok"] is False
    assert anon_get(url).status_code == 401


def anon_get(url):
    from rest_framework.test import APIClient

    return APIClient().get(url)


def test_lock_check_is_one_query(admin_api, deployment_catalog, system):
    assert post(admin_api, report()).status_code == 201
    admin_api.get("/v1/locks/CartService/production")  # warm caches (content types)
    with CaptureQueriesContext(connection) as free:
        assert admin_api.get("/v1/locks/CartService/production").status_code == 200
    lock(system, deployment_catalog, "runningService", "CartService-production")
    with CaptureQueriesContext(connection) as locked:
        assert admin_api.get("/v1/locks/CartService/production").status_code == 423
    lock_queries = [q["sql"] for q in free.captured_queries if "catalog_entity" in q["sql"] or "lock_find" in q["sql"]]
    assert len(lock_queries) == 1 and lock_queries[0].startswith("/* lock_find */"), lock_queries  # prepared
    assert len(free.captured_queries) == len(locked.captured_queries)


def test_lock_check_checks_its_token_first_then_in_its_own_statement(admin_api, deployment_catalog):
    """The first call checks the token (token_user), then the lock; the next lets the check ride in the lock
    statement (portal/api/authentication.py): one statement in all."""
    authentication._hints.clear()
    with CaptureQueriesContext(connection) as first:
        assert admin_api.get("/v1/locks/CartService/production").status_code == 200
    assert len(first.captured_queries) == 2, [q["sql"] for q in first.captured_queries]
    assert "token_user" in first.captured_queries[0]["sql"] and "lock_find" in first.captured_queries[1]["sql"]
    for url, status in (("/v1/locks/CartService/production", 200), ("/v1/locks/CartService/moon", 404)):
        with CaptureQueriesContext(connection) as riding:
            assert admin_api.get(url).status_code == status
        assert len(riding.captured_queries) == 1, [q["sql"] for q in riding.captured_queries]
        assert riding.captured_queries[0]["sql"].startswith("/* lock_find */")
        assert ") AS auth ON true" in riding.captured_queries[0]["sql"]


@pytest.mark.parametrize("url", ["/v1/locks/CartService/production", "/v1/locks/CartService/moon"])
def test_a_revoked_token_gets_401_from_the_lock_check(admin_api, deployment_catalog, url):
    assert admin_api.get(url).status_code in (200, 404)  # the hint is kept
    ApiClient.objects.update(is_active=False)
    response = admin_api.get(url)
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"


def test_a_member_who_may_not_read_environments_gets_403_from_the_lock_check(member_user, deployment_catalog,
                                                                              system):
    api = api_for(member_user)
    assert api.get("/v1/locks/CartService/production").status_code == 200  # the hint is kept
    blueprint_permissions_update(actor=system, blueprint=deployment_catalog["environment"],
                                 data={"entities": {"read": {"roles": [], "users": [], "teams": []}}})
    for url in ("/v1/locks/CartService/production", "/v1/locks/CartService/moon"):  # 403 before 404
        response = api.get(url)
        assert response.status_code == 403, response.content
        assert response.json()["message"] == "You may not read environments and running services."
    get_user_model().objects.filter(pk=member_user.pk).update(is_superuser=True)  # rights granted since the hint
    assert api.get("/v1/locks/CartService/production").status_code == 200
    assert api.get("/v1/locks/CartService/moon").status_code == 404
    get_user_model().objects.filter(pk=member_user.pk).update(is_superuser=False)  # and taken
    assert api.get("/v1/locks/CartService/production").status_code == 403
