"""GET /v1/deployments, GET /v1/running-services and the OpenAPI description of the deployment endpoints."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import LockFactory, TeamFactory, UserFactory
from tests.support.api import api_for
from tests.support.deployment_contract import deployment_blueprints_install
from tests.support.deployments import add_deployment, add_environment, add_running_service, add_service, restrict_read

pytestmark = pytest.mark.django_db


def lock(system, bp, blueprint, identifier, reason, until=None):
    LockFactory(blueprint=bp[blueprint], identifier=identifier, reason=reason, at="2025-03-01T00:00:00.000Z", until=until)


@pytest.fixture
def landscape(db, system):
    """Two services of two teams, three environments, four running services."""
    bp = deployment_blueprints_install(system)
    TeamFactory(name="checkout")
    TeamFactory(name="payments")
    add_service(system, bp, "CartService", team="checkout", title="Cart")
    add_service(system, bp, "PaymentService", team="payments", title="Payments")
    add_environment(system, bp, "production", "production")
    add_environment(system, bp, "staging", "staging")
    add_environment(system, bp, "dev", "development")
    # Created out of order on purpose: the read orders them.
    add_running_service(system, bp, "CartService", "dev", version="1.3.0-rc1")
    add_running_service(system, bp, "PaymentService", "production", version="4.0.0", health="healthy")
    add_running_service(system, bp, "CartService", "production", version="1.2.3", commitSha="abc123",
                        jobUrl="https://ci.example.com/jobs/1", deployedBy="ci@example.com",
                        deployedAt="2025-03-01T10:00:00.000Z", health="degraded")
    add_running_service(system, bp, "CartService", "staging", version="1.3.0")
    return bp


def identifiers(rows):
    return [row["identifier"] for row in rows]


# --- running services ------------------------------------------------------------------------------------------

def test_running_services_by_service_then_environment_type(admin_api, landscape, system):
    lock(system, landscape, "environment", "production", "release freeze")
    lock(system, landscape, "runningService", "CartService-staging", "incident 7", until="2025-03-02T00:00:00.000Z")
    response = admin_api.get("/v1/running-services")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["ok"] is True
    # production, staging, development — not the identifiers' alphabetical order (dev, production, staging).
    assert identifiers(body["runningServices"]) == [
        "CartService-production", "CartService-staging", "CartService-dev", "PaymentService-production"]
    unlocked = {"locked": False, "reason": None, "by": None, "at": None, "until": None}
    freeze = {"locked": True, "reason": "release freeze", "by": "sre@example.com", "at": "2025-03-01T00:00:00.000Z", "until": None}
    assert body["runningServices"][0] == {
        "identifier": "CartService-production",
        "service": {"identifier": "CartService", "title": "Cart"},
        "environment": {"identifier": "production", "type": "production", "lock": freeze},
        "version": "1.2.3", "commitSha": "abc123", "jobUrl": "https://ci.example.com/jobs/1",
        "deployedBy": "ci@example.com", "deployedAt": "2025-03-01T10:00:00.000Z", "health": "degraded",
        "lock": unlocked,
    }
    staging = body["runningServices"][1]
    assert staging["lock"] == {"locked": True, "reason": "incident 7", "by": "sre@example.com",
                               "at": "2025-03-01T00:00:00.000Z", "until": "2025-03-02T00:00:00.000Z"}
    assert staging["environment"] == {"identifier": "staging", "type": "staging", "lock": unlocked}
    assert body["runningServices"][3]["environment"]["lock"] == freeze  # the environment's lock, on every service in it


@pytest.mark.parametrize("query, expected", [
    ("service=CartService", ["CartService-production", "CartService-staging", "CartService-dev"]),
    ("environment=production", ["CartService-production", "PaymentService-production"]),
    ("team=payments", ["PaymentService-production"]),
    ("team=checkout&environment=staging", ["CartService-staging"]),
    ("service=PaymentService&environment=staging", []),
    ("service=&environment=", ["CartService-production", "CartService-staging", "CartService-dev",
                               "PaymentService-production"]),
])
def test_running_services_filters(admin_api, landscape, query, expected):
    response = admin_api.get(f"/v1/running-services?{query}")
    assert response.status_code == 200, response.json()
    assert identifiers(response.json()["runningServices"]) == expected


@pytest.mark.parametrize("url", ["/v1/running-services", "/v1/deployments", "/v1/dora"])
@pytest.mark.parametrize("query, message", [
    ("service=Nope", "service: 'Nope' is not a Component in the catalog"),
    ("environment=moon", "environment: 'moon' is not an environment in the catalog"),
    ("team=nobody", "team: 'nobody' is not a team"),
])
def test_unknown_filter_values_are_404_naming_the_parameter(admin_api, landscape, url, query, message):
    response = admin_api.get(f"{url}?{query}")
    assert response.status_code == 404
    assert response.json() == {"ok": False, "error": "not_found", "message": message}


def test_running_services_hide_what_the_user_may_not_read(landscape, system):
    payments_dev = UserFactory(email="pay@example.com", teams=["payments"])
    outsider = UserFactory(email="outsider@example.com")
    restrict_read(system, landscape, "Component", ownedByTeam=True)
    rows = api_for(payments_dev).get("/v1/running-services").json()["runningServices"]
    assert identifiers(rows) == ["PaymentService-production"]
    assert api_for(outsider).get("/v1/running-services").json() == {"ok": True, "runningServices": []}
    # A service the user may not read is as unknown as one that does not exist.
    response = api_for(payments_dev).get("/v1/running-services?service=CartService")
    assert response.status_code == 404 and response.json()["message"].startswith("service:")

    restrict_read(system, landscape, "environment")
    assert api_for(payments_dev).get("/v1/running-services").json()["runningServices"] == []
    assert api_for(payments_dev).get("/v1/running-services?environment=production").status_code == 404


def test_anonymous_callers_are_refused(landscape, anon_api):
    for url in ("/v1/running-services", "/v1/deployments", "/v1/dora"):
        assert anon_api.get(url).status_code == 401


def test_running_services_query_count_does_not_grow_with_rows(db, system):
    bp = deployment_blueprints_install(system)
    member = UserFactory(email="dev@example.com", teams=["checkout"])
    api = api_for(member)
    add_environment(system, bp, "production", "production")
    add_service(system, bp, "S0", team="checkout")
    add_running_service(system, bp, "S0", "production")
    api.get("/v1/running-services")  # warm caches (content types)
    with CaptureQueriesContext(connection) as one:
        assert len(api.get("/v1/running-services?team=checkout").json()["runningServices"]) == 1
    for i in range(1, 15):
        add_service(system, bp, f"S{i}", team="checkout")
        add_running_service(system, bp, f"S{i}", "production")
    with CaptureQueriesContext(connection) as many:
        assert len(api.get("/v1/running-services?team=checkout").json()["runningServices"]) == 15
    assert len(one.captured_queries) == len(many.captured_queries), [q["sql"] for q in many.captured_queries]


# --- deployments -----------------------------------------------------------------------------------------------

@pytest.fixture
def history(landscape, system):
    bp = landscape
    add_deployment(system, bp, "CartService-production", "cart-1", finished="2025-03-01T10:00:00Z",
                   commit="2025-03-01T09:00:00Z", version="1.2.2")
    add_deployment(system, bp, "CartService-production", "cart-2", finished="2025-03-03T10:00:00+02:00", status="failure",
                   version="1.2.3")
    add_deployment(system, bp, "CartService-staging", "cart-s1", finished="2025-03-02T10:00:00Z", version="1.3.0")
    add_deployment(system, bp, "PaymentService-production", "pay-1", finished="2025-03-04T00:00:00Z", version="4.0.0")
    return bp


def test_deployments_newest_first_with_their_service_and_environment(admin_api, history):
    response = admin_api.get("/v1/deployments")
    assert response.status_code == 200, response.json()
    rows = response.json()["deployments"]
    # cart-2 finished 08:00Z on 03-03 (sent with a +02:00 offset, stored in UTC), after cart-s1, before pay-1.
    assert identifiers(rows) == ["pay-1", "cart-2", "cart-s1", "cart-1"]
    assert rows[1] == {
        "identifier": "cart-2", "runningService": "CartService-production", "service": "CartService",
        "environment": "production", "version": "1.2.3", "commitSha": "sha-cart-2", "commitTime": None,
        "jobUrl": "https://ci.example.com/cart-2", "status": "failure", "deployedBy": "ci@example.com",
        "startedAt": "2025-03-03T08:00:00.000Z", "finishedAt": "2025-03-03T08:00:00.000Z",
    }
    assert rows[3]["commitTime"] == "2025-03-01T09:00:00.000Z"


@pytest.mark.parametrize("query, expected", [
    ("limit=2", ["pay-1", "cart-2"]),
    ("service=CartService", ["cart-2", "cart-s1", "cart-1"]),
    ("environment=production", ["pay-1", "cart-2", "cart-1"]),
    ("team=payments", ["pay-1"]),
    ("service=CartService&environment=staging", ["cart-s1"]),
    # [from, to): 08:00Z is the start of the range, pay-1 at midnight 03-04 is its (excluded) end.
    ("from=2025-03-03T08:00:00Z&to=2025-03-04T00:00:00Z", ["cart-2"]),
    ("from=2025-03-02", ["pay-1", "cart-2", "cart-s1"]),
    ("to=2025-03-02", ["cart-s1", "cart-1"]),  # a date `to` includes its day
    ("from=2025-03-03T09:00:00%2B01:00&to=2025-03-03T09:00:01+01:00", ["cart-2"]),  # unencoded + arrives as a space
])
def test_deployments_filters(admin_api, history, query, expected):
    response = admin_api.get(f"/v1/deployments?{query}")
    assert response.status_code == 200, response.json()
    assert identifiers(response.json()["deployments"]) == expected


def test_deployments_of_few_running_services_are_read_by_key(admin_api, history, system):
    for i in range(40):  # idle running services: one service's deployments are now few of all running services'
        add_service(system, history, f"Idle{i}")
        add_running_service(system, history, f"Idle{i}", "production")
    for query, expected, by_key in (("service=CartService", ["cart-2", "cart-s1", "cart-1"], True),
                                    ("team=payments&from=2025-03-04", ["pay-1"], True),
                                    ("", ["pay-1", "cart-2", "cart-s1", "cart-1"], False)):
        with CaptureQueriesContext(connection) as ctx:
            response = admin_api.get(f"/v1/deployments?{query}")
        assert identifiers(response.json()["deployments"]) == expected, query
        (listing,) = [q["sql"] for q in ctx.captured_queries if "recent.running_service_id" in q["sql"]]
        assert ("LATERAL" in listing) is by_key, query


@pytest.mark.parametrize("query, field", [
    ("from=yesterday", "from"),
    ("to=2025-02-30", "to"),
    ("from=2025-03-02&to=2025-03-01", "to"),
    ("limit=0", "limit"),
    ("limit=1001", "limit"),
    ("limit=many", "limit"),
])
def test_deployments_bad_parameters_are_422(admin_api, history, query, field):
    response = admin_api.get(f"/v1/deployments?{query}")
    assert response.status_code == 422, response.json()
    assert response.json()["error"] == "invalid_request" and response.json()["message"].startswith(f"{field}:")


def test_deployments_hide_what_the_user_may_not_read(history, system):
    payments_dev = UserFactory(email="pay@example.com", teams=["payments"])
    api = api_for(payments_dev)
    assert identifiers(api.get("/v1/deployments").json()["deployments"]) == ["pay-1", "cart-2", "cart-s1", "cart-1"]
    restrict_read(system, history, "Component", ownedByTeam=True)
    assert identifiers(api.get("/v1/deployments").json()["deployments"]) == ["pay-1"]
    restrict_read(system, history, "runningService", users=["pay@example.com"])
    assert identifiers(api.get("/v1/deployments").json()["deployments"]) == ["pay-1"]  # granted to the user directly
    restrict_read(system, history, "deployment")
    assert api.get("/v1/deployments").json() == {"ok": True, "deployments": []}
    # Admins see everything whatever the grants.
    assert len(api_for(UserFactory(email="root@example.com", admin=True)).get("/v1/deployments").json()["deployments"]) == 4


def test_deployments_query_count_does_not_grow_with_rows(landscape, system):
    api = api_for(UserFactory(email="dev@example.com", teams=["checkout"]))
    restrict_read(system, landscape, "Component", ownedByTeam=True)  # the team-owned path of the permission filter
    add_deployment(system, landscape, "CartService-production", "d-0", finished="2025-03-01T00:00:00Z")
    api.get("/v1/deployments")  # warm caches (content types)
    with CaptureQueriesContext(connection) as one:
        assert len(api.get("/v1/deployments?service=CartService").json()["deployments"]) == 1
    for i in range(1, 20):
        add_deployment(system, landscape, "CartService-production", f"d-{i}", finished=f"2025-03-01T00:{i:02d}:00Z")
    with CaptureQueriesContext(connection) as many:
        assert len(api.get("/v1/deployments?service=CartService").json()["deployments"]) == 20
    assert len(one.captured_queries) == len(many.captured_queries), [q["sql"] for q in many.captured_queries]


# --- OpenAPI ---------------------------------------------------------------------------------------------------

def test_openapi_describes_the_deployment_endpoints(anon_api):
    schema = anon_api.get("/v1/openapi.json").json()
    paths = schema["paths"]

    report = paths["/v1/deployments"]["post"]
    body = report["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["service", "environment", "version", "commitSha", "jobUrl"]
    assert set(body["properties"]) == {"service", "environment", "version", "commitSha", "jobUrl", "commitTime", "status",
                                       "deployedBy"}
    assert body["properties"]["status"]["enum"] == ["success", "failure"]
    assert {"201", "404", "422", "423"} <= set(report["responses"])
    locked = report["responses"]["423"]["content"]["application/json"]["schema"]
    assert locked["properties"]["lock"]["properties"]["scope"]["enum"] == ["environment", "service"]
    assert set(report["responses"]["201"]["content"]["application/json"]["schema"]["properties"]) == {
        "ok", "deployment", "runningService"}

    lock_check = paths["/v1/locks/{service}/{environment}"]["get"]
    assert {"200", "423"} <= set(lock_check["responses"])
    assert "lock" in lock_check["responses"]["423"]["content"]["application/json"]["schema"]["properties"]
    assert {(p["name"], p["in"]) for p in lock_check["parameters"]} == {("service", "path"), ("environment", "path")}

    def query_parameters(path):
        return {p["name"] for p in paths[path]["get"]["parameters"] if p["in"] == "query"}

    assert query_parameters("/v1/deployments") == {"service", "environment", "team", "from", "to", "limit"}
    assert query_parameters("/v1/running-services") == {"service", "environment", "team"}
    assert query_parameters("/v1/dora") == {"service", "environment", "team", "from", "to"}
    dora = paths["/v1/dora"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["dora"]
    assert {"deploymentFrequency", "leadTimeForChanges", "changeFailureRate", "timeToRestore", "series", "period",
            "filters"} <= set(dora["properties"])
    for path in ("/v1/deployments", "/v1/dora"):
        assert "422" in paths[path]["get"]["responses"]
