"""Every /v1 path and method nobody serves answers our JSON envelope, whatever DEBUG says (issue 13: Ocean
decodes every answer as JSON, and Django's debug 404 page is HTML); GET /v1/organization answers Port's shape."""
import pytest

pytestmark = pytest.mark.django_db

UNKNOWN_PATHS = ["/v1/integrations/my-ocean", "/v1/integration/my-ocean/unknown", "/v1/nothing/here/", "/v1/",
                 "/v1/blueprints/x/y/z/w"]


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", UNKNOWN_PATHS)
def test_an_unknown_path_answers_the_404_envelope(admin_api, settings, debug, path):
    settings.DEBUG = debug

    response = admin_api.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"ok": False, "error": "not_found", "message": f"No API route GET {path}."}


@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_path_answers_404_to_every_method_and_to_anonymous_callers(anon_api, settings, debug):
    settings.DEBUG = debug

    response = anon_api.delete("/v1/nowhere/x/config")

    assert response.status_code == 404 and response.json()["error"] == "not_found"


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("method, path, allow", [
    ("delete", "/v1/teams", "GET, POST, HEAD, OPTIONS"),
    ("put", "/v1/entities/search", "POST, OPTIONS"),
    ("post", "/v1/organization", "GET, PATCH, HEAD, OPTIONS"),
])
def test_an_unserved_method_answers_405_with_allow(admin_api, settings, debug, method, path, allow):
    settings.DEBUG = debug

    response = getattr(admin_api, method)(path, {}, format="json")

    assert response.status_code == 405
    assert response["Allow"] == allow
    assert response.json() == {"ok": False, "error": "method_not_allowed",
                               "message": f'Method "{method.upper()}" not allowed.'}


def test_get_organization_answers_ports_shape_to_any_caller(member_api):
    response = member_api.get("/v1/organization")

    assert response.status_code == 200
    assert response.json() == {"ok": True, "organization": {"id": "portal", "name": "Portal", "featureFlags": [],
                                                            "isBlocked": False, "settings": {}}}


def test_get_organization_needs_a_token(anon_api):
    response = anon_api.get("/v1/organization")

    assert response.status_code == 401 and response.json()["error"] == "unauthorized"
