"""DORA metrics (catalog/selectors/deployments.py `dora_metrics`, GET /v1/dora) against figures worked out by hand."""
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.selectors.deployments import dora_metrics
from tests.support.deployment_contract import deployment_blueprints_install
from tests.factories import TeamFactory, UserFactory
from tests.support.api import api_for
from tests.support.deployments import add_deployment, add_environment, add_running_service, add_service, restrict_read

pytestmark = pytest.mark.django_db

SINCE = datetime(2025, 3, 1, tzinfo=timezone.utc)
UNTIL = datetime(2025, 3, 8, tzinfo=timezone.utc)  # 7 days
PERIOD = "from=2025-03-01T00:00:00Z&to=2025-03-08T00:00:00Z"

# The fixture, period [03-01 00:00, 03-08 00:00) UTC. lead = finished − commit (successes with a commit time);
# restore = next success of the same running service − the failure's finish.
#
# id  running service             finished (UTC)   status   commit           lead    restore
# c0  CartService-production      02-28 12:00      success  02-28 10:00      —       (before the period)
# c1  CartService-production      03-01 10:00      success  03-01 09:00      3600
# c2  CartService-production      03-02 10:00      failure  03-02 09:30      —       c4: 7200
# c3  CartService-production      03-02 11:00      failure  —                —       c4: 3600
# c4  CartService-production      03-02 12:00      success  03-02 10:00      7200
# c5  CartService-production      03-05 08:00      success  —                —
# c6  CartService-production      03-07 22:00      failure  —                —       c7: 14400 (restored after `to`)
# c7  CartService-production      03-08 02:00      success  03-08 01:00      —       (after the period)
# s1  CartService-staging         03-03 09:00      success  03-03 08:30      1800
# s2  CartService-staging         03-04 09:00      failure  —                —       unresolved (no later staging success;
#                                                                                    c7 and p4 are other running services)
# p1  PaymentService-production   03-01 00:00      success  02-28 00:00      86400   (at `from`: included)
# p2  PaymentService-production   03-06 12:00      failure  —                —       p3: 1800
# p3  PaymentService-production   03-06 12:30      success  03-06 12:00      1800
# p4  PaymentService-production   03-08 00:00      success  03-07 23:00      —       (at `to`: excluded)
#
# All (no filter): successes c1 c4 c5 s1 p1 p3 = 6, perDay 6/7 = 0.857, perWeek 6; failures c2 c3 c6 s2 p2 = 5,
#   total 11, rate 5/11 = 0.455.
#   lead samples sorted 1800 1800 3600 7200 86400: median 3600; p90 at rank 0.9·4 = 3.6 → 7200 + 0.6·79200 = 54720.
#   restore samples sorted 1800 3600 7200 14400: median (3600+7200)/2 = 5400; unresolved 1 (s2).
# service=CartService: successes c1 c4 c5 s1 = 4 (4/7 = 0.571, 4 per week); failures c2 c3 c6 s2 = 4, total 8, rate 0.5;
#   lead 1800 3600 7200: median 3600, p90 at rank 1.8 → 3600 + 0.8·3600 = 6480;
#   restore 3600 7200 14400: median 7200, 3 samples, unresolved 1.
# environment=production: successes c1 c4 c5 p1 p3 = 5 (0.714, 5); failures c2 c3 c6 p2 = 4, total 9, rate 0.444;
#   lead 1800 3600 7200 86400: median 5400, p90 at rank 2.7 → 7200 + 0.7·79200 = 62640;
#   restore 1800 3600 7200 14400: median 5400, 4 samples, unresolved 0.
# team=payments: successes p1 p3 = 2 (0.286, 2); failures p2 = 1, total 3, rate 0.333;
#   lead 1800 86400: median 44100, p90 at rank 0.9 → 1800 + 0.9·84600 = 77940; restore 1800: 1 sample, unresolved 0.
# Series (all): 03-01 2/0 (c1 p1), 03-02 1/2 (c4; c2 c3), 03-03 1/0 (s1), 03-04 0/1 (s2), 03-05 1/0 (c5),
#   03-06 1/1 (p3; p2), 03-07 0/1 (c6).
DEPLOYMENTS = [
    ("c0", "CartService-production", "2025-02-28T12:00:00Z", "success", "2025-02-28T10:00:00Z"),
    ("c1", "CartService-production", "2025-03-01T10:00:00Z", "success", "2025-03-01T09:00:00Z"),
    ("c2", "CartService-production", "2025-03-02T10:00:00Z", "failure", "2025-03-02T09:30:00Z"),
    ("c3", "CartService-production", "2025-03-02T11:00:00Z", "failure", None),
    # The same instant as 12:00Z, written with an offset: compared as instants, not as text.
    ("c4", "CartService-production", "2025-03-02T13:00:00+01:00", "success", "2025-03-02T10:00:00Z"),
    ("c5", "CartService-production", "2025-03-05T08:00:00Z", "success", None),
    ("c6", "CartService-production", "2025-03-07T22:00:00Z", "failure", None),
    ("c7", "CartService-production", "2025-03-08T02:00:00Z", "success", "2025-03-08T01:00:00Z"),
    ("s1", "CartService-staging", "2025-03-03T09:00:00Z", "success", "2025-03-03T08:30:00Z"),
    ("s2", "CartService-staging", "2025-03-04T09:00:00Z", "failure", None),
    ("p1", "PaymentService-production", "2025-03-01T00:00:00Z", "success", "2025-02-28T00:00:00Z"),
    ("p2", "PaymentService-production", "2025-03-06T12:00:00Z", "failure", None),
    ("p3", "PaymentService-production", "2025-03-06T12:30:00Z", "success", "2025-03-06T12:00:00Z"),
    ("p4", "PaymentService-production", "2025-03-08T00:00:00Z", "success", "2025-03-07T23:00:00Z"),
]

ALL = {
    "deploymentFrequency": {"deployments": 6, "perDay": 0.857, "perWeek": 6.0},
    "leadTimeForChanges": {"medianSeconds": 3600.0, "p90Seconds": 54720.0, "samples": 5},
    "changeFailureRate": {"failed": 5, "total": 11, "rate": 0.455},
    "timeToRestore": {"medianSeconds": 5400.0, "samples": 4, "unresolved": 1},
}
BY_FILTER = {
    "service=CartService": {
        "deploymentFrequency": {"deployments": 4, "perDay": 0.571, "perWeek": 4.0},
        "leadTimeForChanges": {"medianSeconds": 3600.0, "p90Seconds": 6480.0, "samples": 3},
        "changeFailureRate": {"failed": 4, "total": 8, "rate": 0.5},
        "timeToRestore": {"medianSeconds": 7200.0, "samples": 3, "unresolved": 1},
    },
    "environment=production": {
        "deploymentFrequency": {"deployments": 5, "perDay": 0.714, "perWeek": 5.0},
        "leadTimeForChanges": {"medianSeconds": 5400.0, "p90Seconds": 62640.0, "samples": 4},
        "changeFailureRate": {"failed": 4, "total": 9, "rate": 0.444},
        "timeToRestore": {"medianSeconds": 5400.0, "samples": 4, "unresolved": 0},
    },
    "team=payments": {
        "deploymentFrequency": {"deployments": 2, "perDay": 0.286, "perWeek": 2.0},
        "leadTimeForChanges": {"medianSeconds": 44100.0, "p90Seconds": 77940.0, "samples": 2},
        "changeFailureRate": {"failed": 1, "total": 3, "rate": 0.333},
        "timeToRestore": {"medianSeconds": 1800.0, "samples": 1, "unresolved": 0},
    },
}
SERIES = [
    {"date": "2025-03-01", "success": 2, "failure": 0},
    {"date": "2025-03-02", "success": 1, "failure": 2},
    {"date": "2025-03-03", "success": 1, "failure": 0},
    {"date": "2025-03-04", "success": 0, "failure": 1},
    {"date": "2025-03-05", "success": 1, "failure": 0},
    {"date": "2025-03-06", "success": 1, "failure": 1},
    {"date": "2025-03-07", "success": 0, "failure": 1},
]
EMPTY = {
    "deploymentFrequency": {"deployments": 0, "perDay": 0.0, "perWeek": 0.0},
    "leadTimeForChanges": {"medianSeconds": None, "p90Seconds": None, "samples": 0},
    "changeFailureRate": {"failed": 0, "total": 0, "rate": None},
    "timeToRestore": {"medianSeconds": None, "samples": 0, "unresolved": 0},
}
METRICS = tuple(ALL)


def metrics(dora):
    return {key: dora[key] for key in METRICS}


IDLE_SERVICES = 30


@pytest.fixture(params=["wide", "narrow"])
def dora_catalog(request, db, system):
    """The table above. "narrow" adds idle running services (no deployments, figures unchanged), so that a
    filtered read covers few of all running services and reads their deployments by key (LATERAL)."""

    bp = deployment_blueprints_install(system)
    TeamFactory(name="checkout")
    TeamFactory(name="payments")
    add_service(system, bp, "CartService", team="checkout")
    add_service(system, bp, "PaymentService", team="payments")
    add_environment(system, bp, "production", "production")
    add_environment(system, bp, "staging", "staging")
    for service, environment in (("CartService", "production"), ("CartService", "staging"), ("PaymentService", "production")):
        add_running_service(system, bp, service, environment)
    for identifier, running_service, finished, status, commit in DEPLOYMENTS:
        add_deployment(system, bp, running_service, identifier, finished=finished, status=status, commit=commit)
    if request.param == "narrow":
        for i in range(IDLE_SERVICES):
            add_service(system, bp, f"Idle{i}")
            add_running_service(system, bp, f"Idle{i}", "production")
    bp["shape"] = request.param
    return bp


def test_dora_figures_match_the_hand_computed_table(admin_api, dora_catalog):
    response = admin_api.get(f"/v1/dora?{PERIOD}")
    assert response.status_code == 200, response.json()
    assert response.json()["ok"] is True
    dora = response.json()["dora"]
    assert metrics(dora) == ALL
    assert dora["series"] == SERIES
    assert dora["period"] == {"from": "2025-03-01T00:00:00.000Z", "to": "2025-03-08T00:00:00.000Z"}
    assert dora["filters"] == {"service": None, "team": None, "environment": None}


@pytest.mark.parametrize("query", sorted(BY_FILTER))
def test_dora_filters(admin_api, dora_catalog, query):
    with CaptureQueriesContext(connection) as ctx:
        response = admin_api.get(f"/v1/dora?{PERIOD}&{query}")
    assert response.status_code == 200, response.json()
    (dora_sql,) = [q["sql"] for q in ctx.captured_queries if "percentile_cont" in q["sql"]]
    # One or two running services of 33 are few; of 3 they are not, nor are the 32 production ones of 33
    # (the idle running services are in production).
    narrow = dora_catalog["shape"] == "narrow" and query != "environment=production"
    assert ("LATERAL" in dora_sql) is narrow
    dora = response.json()["dora"]
    assert metrics(dora) == BY_FILTER[query]
    name, value = query.split("=")
    assert dora["filters"][name] == value
    assert sum(day["success"] for day in dora["series"]) == BY_FILTER[query]["deploymentFrequency"]["deployments"]


def test_filters_combine(admin_api, dora_catalog):
    dora = admin_api.get(f"/v1/dora?{PERIOD}&team=checkout&environment=staging").json()["dora"]
    # s1 and s2 only: one success (lead 1800), one failure never restored.
    assert metrics(dora) == {
        "deploymentFrequency": {"deployments": 1, "perDay": 0.143, "perWeek": 1.0},
        "leadTimeForChanges": {"medianSeconds": 1800.0, "p90Seconds": 1800.0, "samples": 1},
        "changeFailureRate": {"failed": 1, "total": 2, "rate": 0.5},
        "timeToRestore": {"medianSeconds": None, "samples": 0, "unresolved": 1},
    }


def test_a_date_to_includes_its_day(admin_api, dora_catalog):
    dora = admin_api.get("/v1/dora?from=2025-03-01&to=2025-03-07").json()["dora"]
    assert dora["period"] == {"from": "2025-03-01T00:00:00.000Z", "to": "2025-03-08T00:00:00.000Z"}
    assert metrics(dora) == ALL


def test_restore_after_the_period_ends_is_counted(admin_api, dora_catalog):
    # Only 03-07: c6 fails at 22:00 and c7 restores it four hours later, after `to`.
    dora = admin_api.get("/v1/dora?from=2025-03-07&to=2025-03-07&service=CartService&environment=production").json()["dora"]
    assert dora["timeToRestore"] == {"medianSeconds": 14400.0, "samples": 1, "unresolved": 0}
    assert dora["changeFailureRate"] == {"failed": 1, "total": 1, "rate": 1.0}
    assert dora["deploymentFrequency"]["deployments"] == 0
    assert dora["series"] == [{"date": "2025-03-07", "success": 0, "failure": 1}]


def test_a_period_with_nothing_in_it(admin_api, dora_catalog):
    dora = admin_api.get("/v1/dora?from=2024-01-01&to=2024-01-02").json()["dora"]
    assert metrics(dora) == EMPTY
    assert dora["series"] == [{"date": "2024-01-01", "success": 0, "failure": 0},
                              {"date": "2024-01-02", "success": 0, "failure": 0}]


def test_default_period_is_the_last_30_days(admin_api, dora_catalog):
    before = datetime.now(timezone.utc)
    dora = admin_api.get("/v1/dora").json()["dora"]
    since, until = (datetime.fromisoformat(dora["period"][key].replace("Z", "+00:00")) for key in ("from", "to"))
    assert until - since == timedelta(days=30)
    assert before - timedelta(seconds=1) <= until <= datetime.now(timezone.utc)
    assert dora["series"][0]["date"] == since.date().isoformat()
    assert dora["series"][-1]["date"] == (until - timedelta(microseconds=1)).date().isoformat()
    assert metrics(dora) == EMPTY  # the fixture is in 2025-03


@pytest.mark.parametrize("query, field", [
    ("from=last-week", "from"),
    ("to=2025-13-01", "to"),
    ("from=2025-03-08&to=2025-03-01", "to"),
    ("from=2025-03-01T00:00:00Z&to=2025-03-01T00:00:00Z", "to"),
    ("from=2999-01-01", "from"),  # `to` defaults to now
    ("from=2020-01-01&to=2025-01-01", "from"),  # longer than the two years a daily series may span
])
def test_bad_periods_are_422_naming_the_parameter(admin_api, dora_catalog, query, field):
    response = admin_api.get(f"/v1/dora?{query}")
    assert response.status_code == 422, response.json()
    assert response.json()["ok"] is False and response.json()["message"].startswith(f"{field}:")


def test_dora_counts_only_what_the_user_may_read(dora_catalog, system):
    payments_dev = UserFactory(email="pay@example.com", teams=["payments"])
    api = api_for(payments_dev)
    assert metrics(api.get(f"/v1/dora?{PERIOD}").json()["dora"]) == ALL  # Members read every blueprint by default
    restrict_read(system, dora_catalog, "Component", ownedByTeam=True)
    assert metrics(api.get(f"/v1/dora?{PERIOD}").json()["dora"]) == BY_FILTER["team=payments"]
    assert api.get(f"/v1/dora?{PERIOD}&service=CartService").status_code == 404
    restrict_read(system, dora_catalog, "deployment")
    dora = api.get(f"/v1/dora?{PERIOD}").json()["dora"]
    assert metrics(dora) == EMPTY
    assert dora["series"] == [{**day, "success": 0, "failure": 0} for day in SERIES]


def test_selector_takes_the_user_first(dora_catalog, admin_user):
    dora = dora_metrics(admin_user, service="PaymentService", since=SINCE, until=UNTIL)
    assert metrics(dora) == BY_FILTER["team=payments"]
    with pytest.raises(ValueError):
        dora_metrics(admin_user, since=UNTIL, until=SINCE)


def test_dora_query_count_does_not_grow_with_rows(db, system):
    bp = deployment_blueprints_install(system)
    api = api_for(UserFactory(email="dev@example.com", teams=["checkout"]))
    restrict_read(system, bp, "Component", ownedByTeam=True)
    add_service(system, bp, "CartService", team="checkout")
    add_environment(system, bp, "production", "production")
    add_running_service(system, bp, "CartService", "production")
    add_deployment(system, bp, "CartService-production", "d-0", finished="2025-03-01T00:00:00Z", status="failure")
    api.get(f"/v1/dora?{PERIOD}")  # warm caches (content types)
    with CaptureQueriesContext(connection) as one:
        assert api.get(f"/v1/dora?{PERIOD}&team=checkout").json()["dora"]["changeFailureRate"]["total"] == 1
    for i in range(1, 20):
        add_deployment(system, bp, "CartService-production", f"d-{i}", finished=f"2025-03-0{1 + i % 7}T01:00:00Z",
                       status="success" if i % 3 else "failure", commit="2025-02-28T00:00:00Z")
    with CaptureQueriesContext(connection) as many:
        assert api.get(f"/v1/dora?{PERIOD}&team=checkout").json()["dora"]["changeFailureRate"]["total"] == 20
    assert len(one.captured_queries) == len(many.captured_queries), [q["sql"] for q in many.captured_queries]
    dora_queries = [q["sql"] for q in many.captured_queries if "percentile_cont" in q["sql"]]
    assert len(dora_queries) == 1  # the aggregation is one statement, not a loop over deployments
