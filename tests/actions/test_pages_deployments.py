"""/deployments/: where each service runs, recent deployments and DORA figures for a selection and a period.

The fixture, over the period 2025-03-01 .. 2025-03-10 (10 days, `to` inclusive):

| deployment | running service            | status  | finished (UTC)   | commit (UTC)     | lead | restores |
|------------|----------------------------|---------|------------------|------------------|------|----------|
| d1         | CartService-production     | success | 03-02 10:00      | 03-02 08:00      | 2h   |          |
| d2         | CartService-production     | failure | 03-03 12:00      |                  |      | by d3 30m|
| d3         | CartService-production     | success | 03-03 12:30      | 03-03 06:30      | 6h   |          |
| d4         | CartService-production     | success | 03-05 09:00      | 03-05 05:00      | 4h   |          |
| d5         | PaymentService-staging     | failure | 03-05 10:00      |                  |      | never    |
| d0         | CartService-production     | success | 02-20 10:00      | (before the period: not counted) |

All: 3 successes / 10 days = 0.3 per day = 2.1 per week; lead median 4h, p90 4h + 0.8 × 2h = 5h 36m;
2 of 5 failed = 40%; restore median 30m over 1 sample, 1 unresolved.
CartService only: 1 of 4 failed = 25%. Staging only: no success, 1 of 1 failed = 100%.
"""
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.services.permissions import blueprint_permissions_update
from portal.actor import Actor
from tests.factories import DeploymentFactory, UserFactory
from tests.support.locks import deploy_catalog, lock, lock_actions_install, running_service

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()
PERIOD = "from=2025-03-01&to=2025-03-10"


def deployment(identifier, running, status, finished, commit=None, version="1.0.0"):
    properties = {"version": version, "commitSha": "0123456789abcdef", "jobUrl": f"https://ci.example.com/{identifier}",
                  "status": status, "deployedBy": "ci@example.com", "startedAt": finished, "finishedAt": finished}
    if commit:
        properties["commitTime"] = commit
    DeploymentFactory(identifier=identifier, running_service=running, properties=properties)


@pytest.fixture
def deployments_world(db):
    blueprints = deploy_catalog()
    lock_actions_install()
    running_service("CartService", "production", version="2.4.1", team="platform", health="healthy")
    running_service("CartService", "staging", version="2.5.0", team="platform")
    running_service("PaymentService", "staging", version="9.0.0", team="payments", health="degraded")
    lock("runningService", "CartService-production", reason="incident 42")
    deployment("d0", "CartService-production", "success", "2025-02-20T10:00:00.000Z", "2025-02-20T09:00:00.000Z")
    deployment("d1", "CartService-production", "success", "2025-03-02T10:00:00.000Z", "2025-03-02T08:00:00.000Z")
    deployment("d2", "CartService-production", "failure", "2025-03-03T12:00:00.000Z")
    deployment("d3", "CartService-production", "success", "2025-03-03T12:30:00.000Z", "2025-03-03T06:30:00.000Z")
    deployment("d4", "CartService-production", "success", "2025-03-05T09:00:00.000Z", "2025-03-05T05:00:00.000Z", version="2.4.1")
    deployment("d5", "PaymentService-staging", "failure", "2025-03-05T10:00:00.000Z")
    return {"blueprints": blueprints, "dev": UserFactory(email="dev@example.com")}


def text(response):
    return re.sub(r"\s+", " ", response.content.decode())


def get(client, user, url):
    client.force_login(user)
    return client.get(url)


def figure(html, key):
    card = re.search(rf'<div class="card figure" id="dora-{key}">(.*?)</div>', html).group(1)
    return re.search(r'<p class="value">(.*?)</p>', card).group(1), re.search(r'<p class="help">(.*?)</p>', card).group(1)


def section(html, heading_id):
    return re.search(rf'<h2 id="{heading_id}">.*?</h2>(.*?)</section>', html).group(1)


def test_dora_figures_are_readable_and_match_the_hand_computed_table(client, deployments_world):
    response = get(client, deployments_world["dev"], f"/deployments/?{PERIOD}")
    assert response.status_code == 200
    html = text(response)
    assert figure(html, "frequency") == ("2.1 per week", "3 successful deployments")
    assert figure(html, "lead") == ("4h median", "p90 5h 36m, from commit to deployment, over 3 deployments")
    assert figure(html, "failure") == ("40%", "2 of 5 deployments failed")
    assert figure(html, "restore") == ("30m median", "1 failure restored, 1 not yet")
    assert "Period: 2025-03-01 00:00 – 2025-03-11 00:00 UTC" in html


def test_the_chart_stacks_successes_and_failures_per_day_with_a_table_fallback(client, deployments_world):
    html = text(get(client, deployments_world["dev"], f"/deployments/?{PERIOD}"))
    svg = re.search(r'<svg class="chart".*?</svg>', html).group(0)
    assert 'role="img"' in svg and 'aria-labelledby="h-chart chart-desc"' in svg
    assert len(re.findall(r'fill="#1a7f37"', svg)) == 3 and len(re.findall(r'fill="#cf222e"', svg)) == 2
    assert "<title>2025-03-03: 1 succeeded, 1 failed</title>" in svg
    table = re.search(r"<summary>Deployments per day as a table</summary>(.*?)</details>", html).group(1)
    days = re.findall(r'<tr><td>([\d-]+)</td><td class="num">(\d+)</td><td class="num">(\d+)</td></tr>', table)
    assert len(days) == 10 and days[0] == ("2025-03-01", "0", "0") and days[4] == ("2025-03-05", "1", "1")


def test_where_each_service_runs(client, deployments_world):
    html = text(get(client, deployments_world["dev"], "/deployments/"))
    running = section(html, "h-running")
    rows = re.findall(r"<tr>(.*?)</tr>", running.split("<tbody>")[1])
    assert len(rows) == 3
    assert 'rowspan="2"' in rows[0] and "CartService" in rows[0] and "production" in rows[0]
    assert "2.4.1" in rows[0] and '<code title="abc1234def">abc1234</code>' in rows[0]
    assert "2025-01-01 10:00 UTC" in rows[0] and "ci@example.com" in rows[0]
    assert 'href="https://ci.example.com/jobs/1"' in rows[0]
    assert '<span class="badge red">Locked</span> incident 42' in rows[0] and '<span class="badge green">healthy</span>' in rows[0]
    assert "staging" in rows[1] and '<span class="badge green">Unlocked</span>' in rows[1]
    assert "PaymentService" in rows[2] and '<span class="badge orange">degraded</span>' in rows[2]


def test_recent_deployments_newest_first_with_status_badges(client, deployments_world):
    html = text(get(client, deployments_world["dev"], f"/deployments/?{PERIOD}"))
    recent = section(html, "h-recent")
    assert re.findall(r'href="https://ci.example.com/(d\d)"', recent) == ["d5", "d4", "d3", "d2", "d1"]
    assert '<span class="badge red">failure</span>' in recent and '<span class="badge green">success</span>' in recent


@pytest.mark.parametrize("query, failure, recent", [
    ("service=CartService", ("25%", "1 of 4 deployments failed"), ["d4", "d3", "d2", "d1"]),
    ("team=payments", ("100%", "1 of 1 deployment failed"), ["d5"]),
    ("environment=staging", ("100%", "1 of 1 deployment failed"), ["d5"]),
])
def test_filters_narrow_every_section(client, deployments_world, query, failure, recent):
    html = text(get(client, deployments_world["dev"], f"/deployments/?{query}&{PERIOD}"))
    assert figure(html, "failure") == failure
    assert re.findall(r'href="https://ci.example.com/(d\d)"', section(html, "h-recent")) == recent
    name, value = query.split("=")
    assert re.search(rf'<select id="f-{name}" name="{name}">.*?<option value="{value}" selected>', html)


def test_the_service_and_environment_pages_fix_the_selection(client, deployments_world):
    html = text(get(client, deployments_world["dev"], f"/deployments/services/CartService/?{PERIOD}"))
    assert "<h1>Deployments of CartService</h1>" in html and figure(html, "failure")[0] == "25%"
    assert "PaymentService" not in section(html, "h-running")
    html = text(get(client, deployments_world["dev"], "/deployments/environments/staging/"))
    assert "<h1>Deployments to staging</h1>" in html
    running = section(html, "h-running")
    assert "2.5.0" in running and "9.0.0" in running and "2.4.1" not in running


def test_an_unknown_filter_is_shown_at_its_field(client, deployments_world):
    response = get(client, deployments_world["dev"], "/deployments/?service=Nope")
    assert response.status_code == 404
    html = text(response)
    assert '<div class="field invalid"> <label for="f-service">' in html
    assert "service: &#x27;Nope&#x27; is not a Component in the catalog" in html
    assert '<option value="Nope" selected>Nope</option>' in html  # the choice is kept
    assert get(client, deployments_world["dev"], "/deployments/services/Nope/").status_code == 404


@pytest.mark.parametrize("query, status, message", [
    ("from=yesterday", 422, "from: &#x27;yesterday&#x27; is not an ISO 8601 date or date-time"),
    ("from=2025-03-10&to=2025-03-01", 422, "to: must be later than from"),
])
def test_a_bad_period_is_shown_at_its_field_with_the_input_kept(client, deployments_world, query, status, message):
    response = get(client, deployments_world["dev"], f"/deployments/?{query}")
    assert response.status_code == status
    html = text(response)
    assert message in html and 'aria-invalid="true"' in html
    assert f'value="{query.split("&")[0].split("=")[1]}"' in html


def test_deployments_the_user_may_not_read_are_not_counted(client, deployments_world):
    blueprint_permissions_update(actor=SYSTEM, blueprint=deployments_world["blueprints"]["deployment"],
                                 data={"entities": {"read": {"roles": []}}})
    html = text(get(client, deployments_world["dev"], f"/deployments/?{PERIOD}"))
    assert figure(html, "failure") == ("—", "0 of 0 deployments failed")
    assert "No deployments in this period." in html
    assert "2.4.1" in section(html, "h-running")  # running services stay readable


def test_needs_a_sign_in(client, deployments_world):
    assert client.get("/deployments/").status_code == 302


def queries_for(client, user, url):
    client.force_login(user)
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_query_count_does_not_grow_with_deployments_and_services(client, deployments_world):
    url = "/deployments/?from=2025-03-01&to=2025-03-31"
    filtered = url + "&team=platform"
    few, few_filtered = queries_for(client, deployments_world["dev"], url), queries_for(client, deployments_world["dev"], filtered)
    for i in range(10):
        running_service(f"Svc{i}", "production", team="platform")
        for j in range(3):
            deployment(f"x{i}-{j}", f"Svc{i}-production", "failure" if j == 1 else "success",
                       f"2025-03-{10 + j:02d}T10:00:00.000Z", f"2025-03-{10 + j:02d}T09:00:00.000Z")
    assert queries_for(client, deployments_world["dev"], url) == few
    assert queries_for(client, deployments_world["dev"], filtered) == few_filtered
