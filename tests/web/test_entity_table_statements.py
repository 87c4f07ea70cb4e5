"""The catalog table page's SQL statements (issue 16): a constant number whatever the blueprint holds, for an admin
and for a member, on the first page, a page sorted by a property and the next page of that sort, so a regression
that reads per row or per relation fails here rather than in `make bench`."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import BlueprintFactory, EntityFactory, UserFactory
from tests.support.pages import page_as

pytestmark = pytest.mark.django_db

# measured: admin 6 (session, user, the blueprint, the page, relations and teams, saved views); a member 8 (the
# read grants in one statement, catalog.access._read_grants, and the admin-role check)
STATEMENTS = {"admin@example.com": 6, "dev@example.com": 8}
PAGES = ["/catalog/Build/", "/catalog/Build/?sort=-finishedAt", "/catalog/Build/?sort=duration"]


@pytest.fixture
def build_table(db):
    UserFactory(email="admin@example.com", admin=True)
    UserFactory(email="dev@example.com")
    BlueprintFactory(identifier="Pipeline", title="Pipeline")
    BlueprintFactory(identifier="Build", title="Build", schema={"properties": {
        "finishedAt": {"type": "string", "format": "date-time", "indexed": True},
        "duration": {"type": "number"}}},
        relations={"pipeline": {"target": "Pipeline", "many": False}})
    EntityFactory(blueprint="Pipeline", identifier="main")


def add_builds(start, stop):
    for n in range(start, stop):
        EntityFactory(blueprint="Build", identifier=f"b{n:03d}", relations={"pipeline": "main"},
                      properties={"finishedAt": f"2026-01-{1 + n % 28:02d}T00:00:00.000Z", "duration": n})


def statements(client, path):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.content[:300]
    return len(captured), response.content.decode()


@pytest.mark.parametrize("email", sorted(STATEMENTS))
def test_a_table_page_costs_the_same_statements_at_any_size(client, build_table, email):
    add_builds(0, 3)
    page_as(client, email, "/catalog/Build/")  # signed in, caches warm
    few = [statements(client, path)[0] for path in PAGES]
    add_builds(3, 70)
    many = [statements(client, path)[0] for path in PAGES]
    assert many == few and max(many) <= STATEMENTS[email], (few, many)
    count, html = statements(client, "/catalog/Build/?sort=-finishedAt")
    assert html.count('<div class="muted ident">') == 50 and 'rel="next"' in html
