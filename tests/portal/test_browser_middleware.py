"""A /v1 call with a bearer token passes around the browser's middleware (portal/browser_middleware.py); a /v1 call
signed in by its session, and every page, go through it as before; what guards every caller still does."""
import pytest
from django.test import Client

from portal.browser_middleware import bearer_api_call
from tests.factories import UserFactory
from tests.support.api import api_for

pytestmark = pytest.mark.django_db


def test_a_bearer_call_loads_no_session_and_sets_no_cookie(client):
    user = UserFactory(email="dev@example.com")
    client.force_login(user)  # a session cookie is sent along: the token decides, not the session
    api = api_for(user)
    api.cookies = client.cookies
    response = api.get("/v1/blueprints")
    assert response.status_code == 200 and not response.cookies
    assert not hasattr(response.wsgi_request, "session") and response.wsgi_request.user == user


def test_a_call_signed_in_by_its_session_goes_through_it(client):
    user = UserFactory(email="dev@example.com")
    client.force_login(user)
    response = client.get("/v1/blueprints")
    assert response.status_code == 200 and response.wsgi_request.session.session_key


def test_what_guards_every_caller_still_does():
    api = api_for(UserFactory(email="dev@example.com"))
    assert api.get("/v1/blueprints", HTTP_HOST="evil.example.com").status_code == 400  # ALLOWED_HOSTS
    response = api.get("/v1/blueprints")
    assert response["X-Frame-Options"] == "DENY" and response["X-Content-Type-Options"] == "nosniff"
    assert int(response["Content-Length"]) == len(response.content)
    assert Client().get("/v1/blueprints", HTTP_AUTHORIZATION="Bearer nonsense").status_code == 401
    forms = Client(enforce_csrf_checks=True)
    forms.force_login(UserFactory(email="pages@example.com"))
    assert forms.post("/v1/blueprints", {"identifier": "x"}).status_code == 403  # CSRF, for a session's call


@pytest.mark.parametrize("path, header, bearer", [
    ("/v1/blueprints", "Bearer abc", True), ("/v1/blueprints", "bearer abc", True),
    ("/v1/blueprints", "Bearer", False), ("/v1/blueprints", "", False), ("/catalog/", "Bearer abc", False),
])
def test_what_counts_as_a_bearer_call(rf, path, header, bearer):
    request = rf.get(path, HTTP_AUTHORIZATION=header) if header else rf.get(path)
    assert bearer_api_call(request) is bearer
