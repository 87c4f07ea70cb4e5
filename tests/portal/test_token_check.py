"""A bearer token checked by the statement of a read that runs on the user this process found behind it last time
(portal/api/authentication.py): whatever changed since — a credential revoked, a user deactivated, rights taken or
granted — the answer is the one a check made first would give, and a write never runs before its check."""
import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Entity
from portal.api import authentication
from portal.models import ApiClient
from tests.support.api import api_for
from tests.support.entity_documents import varied_catalog

pytestmark = pytest.mark.django_db

CLUSTER = "/v1/blueprints/Cluster/entities/c1"  # owned by a team: nobody@ may not read it, an admin may
SEARCH = "/v1/blueprints/App/entities/search"


@pytest.fixture
def readers_catalog(db):
    varied_catalog()
    authentication._hints.clear()


def statements(api, method, url, body=None):
    with CaptureQueriesContext(connection) as captured:
        response = getattr(api, method)(url, body, format="json") if body is not None else getattr(api, method)(url)
    return response, [query["sql"] for query in captured.captured_queries]


def user(email):
    return get_user_model().objects.get(email=email)


def test_the_first_call_checks_first_and_the_next_rides_in_the_statement(readers_catalog):
    api = api_for(user("admin@example.com"))
    assert api.post(SEARCH, {"limit": 2}, format="json").status_code == 200  # the definitions this process keeps
    assert api.get(CLUSTER).status_code == 200
    authentication._hints.clear()
    response, first = statements(api, "get", CLUSTER)
    assert response.status_code == 200 and "token_user" in first[0] and ") AS auth ON true" not in first[-1]
    response, second = statements(api, "get", CLUSTER)
    assert response.status_code == 200 and len(second) == 1 and ") AS auth ON true" in second[0]
    response, page = statements(api, "post", SEARCH, {"limit": 2})
    assert response.status_code == 200 and ") AS auth ON true" in page[-1]
    assert not any("token_user" in sql for sql in page)  # (a SET of the plan cache mode may come first)


@pytest.mark.parametrize("revoke", ["client", "user"])
def test_a_revoked_token_gets_401_and_is_checked_first_again(readers_catalog, revoke):
    api = api_for(user("admin@example.com"))
    assert api.get(CLUSTER).status_code == 200  # the hint is kept
    if revoke == "client":
        ApiClient.objects.update(is_active=False)
    else:
        get_user_model().objects.filter(email="admin@example.com").update(is_active=False)
    for method, url, body in (("get", CLUSTER, None), ("post", SEARCH, {"limit": 2})):
        response = getattr(api, method)(url, body, format="json") if body else api.get(url)
        assert response.status_code == 401, response.content
        assert response.json() == {"ok": False, "error": "unauthorized",
                                   "message": "The credential behind this token is no longer active."}
    assert not authentication._hints  # dropped (this test's only one): the next call checks before it reads
    response, checked = statements(api, "get", CLUSTER)
    assert response.status_code == 401 and len(checked) == 1 and "token_user" in checked[0]


def test_rights_taken_or_granted_since_the_hint_apply_at_once(readers_catalog):
    api = api_for(user("nobody@example.com"))
    assert api.get(CLUSTER).status_code == 404  # a member outside the owning team
    get_user_model().objects.filter(email="nobody@example.com").update(is_superuser=True)
    response, read = statements(api, "get", CLUSTER)
    assert response.status_code == 200 and response.json()["entity"]["identifier"] == "c1"
    assert len(read) >= 2  # read for the hinted member, then again for the admin the check found
    get_user_model().objects.filter(email="nobody@example.com").update(is_superuser=False)
    assert api.get(CLUSTER).status_code == 404
    found = api.post(SEARCH.replace("App", "Cluster"), {"limit": 10}, format="json").json()["entities"]
    assert found == []


def test_an_error_before_the_statement_does_not_answer_a_revoked_token(readers_catalog):
    """The view fails before its statement (an unknown blueprint, a bad body): the pending check runs first."""
    api = api_for(user("admin@example.com"))
    assert api.get(CLUSTER).status_code == 200
    assert api.get("/v1/blueprints/Nope/entities/x").status_code == 404  # the credential stands: the view's answer
    assert api.post(SEARCH, {"limit": "x"}, format="json").status_code == 422
    ApiClient.objects.update(is_active=False)
    assert api.get("/v1/blueprints/Nope/entities/x").status_code == 401
    assert api.post(SEARCH, {"limit": "x"}, format="json").status_code == 401


def test_a_write_is_checked_before_it_runs(readers_catalog):
    api = api_for(user("admin@example.com"))
    assert api.get("/v1/blueprints/App/entities/full").status_code == 200
    response, checked = statements(api, "patch", "/v1/blueprints/App/entities/full", {"properties": {"notes": "x"}})
    assert response.status_code == 200 and "token_user" in checked[0]
    ApiClient.objects.update(is_active=False)
    response = api.patch("/v1/blueprints/App/entities/full", {"properties": {"notes": "revoked"}}, format="json")
    assert response.status_code == 401
    assert Entity.objects.get(blueprint__identifier="App", identifier="full").properties["notes"] == "x"


def test_a_database_that_cannot_check_answers_503(readers_catalog, monkeypatch):
    api = api_for(user("admin@example.com"))
    assert api.get(CLUSTER).status_code == 200

    def down(*args):
        raise OperationalError("the database is restarting")

    monkeypatch.setattr(authentication, "token_user", down)
    response = api.get("/v1/blueprints/Nope/entities/x")  # the check the view left pending cannot run
    assert response.status_code == 503 and response.json()["ok"] is False


def test_hints_are_bounded(readers_catalog, monkeypatch):
    monkeypatch.setattr(authentication._hints, "size", 2)
    authentication._hints.clear()
    for email in ("admin@example.com", "dev@example.com", "pay@example.com"):
        assert api_for(user(email)).get("/v1/blueprints/App/entities/full").status_code == 200
    assert len(authentication._hints) == 2
