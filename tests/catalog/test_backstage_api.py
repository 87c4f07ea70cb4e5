"""/v1/backstage/locations: register, list, read, refresh (with the blueprints installed by the flag), delete;
admins only; bad input answers the envelope naming the field."""
import pytest

from catalog.models import BackstageLocation, Entity
from catalog.services.backstage import backstage_location_register
from tests.support.backstage import EXPECTED_ENTITIES, EXPECTED_ERRORS, catalog_copy, entity_keys, error_keys

pytestmark = pytest.mark.django_db
LOCATIONS = "/v1/backstage/locations"


@pytest.fixture
def test_catalog_root(tmp_path, settings):
    settings.BACKSTAGE_FILE_ROOTS = [str(tmp_path)]
    return catalog_copy(tmp_path)


def test_register_refresh_read_and_delete(admin_api, test_catalog_root):
    answer = admin_api.post(LOCATIONS, {"identifier": "test-catalog", "type": "file", "target": str(test_catalog_root),
                                        "refreshIntervalMinutes": 5}, format="json")
    assert answer.status_code == 201, answer.json()
    assert answer.json()["location"]["lastRefreshAt"] is None and answer.json()["location"]["refreshIntervalMinutes"] == 5

    refused = admin_api.post(f"{LOCATIONS}/test-catalog/refresh")
    assert refused.status_code == 422 and refused.json()["ok"] is False
    assert "blueprints are not installed" in refused.json()["message"]

    refreshed = admin_api.post(f"{LOCATIONS}/test-catalog/refresh?install_blueprints=true")
    assert refreshed.status_code == 200
    location = refreshed.json()["location"]
    assert location["entityCount"] == len(EXPECTED_ENTITIES) and location["lastRefreshAt"] is not None
    assert error_keys(location["errors"], test_catalog_root.parent) == EXPECTED_ERRORS
    assert set(location["errors"][0]) == {"file", "document", "field", "message"}

    assert admin_api.get(f"{LOCATIONS}/test-catalog").json()["location"]["entityCount"] == len(EXPECTED_ENTITIES)
    assert [loc["identifier"] for loc in admin_api.get(LOCATIONS).json()["locations"]] == ["test-catalog"]

    assert admin_api.delete(f"{LOCATIONS}/test-catalog").json() == {"ok": True}
    assert not BackstageLocation.objects.exists() and entity_keys() == set()


def test_members_may_not_use_locations(member_api, anon_api):
    assert member_api.get(LOCATIONS).status_code == 403
    assert member_api.post(LOCATIONS, {"identifier": "x", "type": "github", "target": "org"}, format="json").status_code == 403
    assert anon_api.get(LOCATIONS).status_code == 401


@pytest.mark.parametrize("body, field", [
    ({"type": "github", "target": "org"}, "identifier"),
    ({"identifier": "x", "type": "svn", "target": "org"}, "type"),
    ({"identifier": "x", "type": "github"}, "target"),
    ({"identifier": "x", "type": "github", "target": "org", "refreshIntervalMinutes": 1e308}, "refreshIntervalMinutes"),
    ({"identifier": "x", "type": "github", "target": "org", "refreshIntervalMinutes": True}, "refreshIntervalMinutes"),
    ({"identifier": "x", "type": "file", "target": "/a\x00b"}, "target"),
    ({"identifier": "../../etc", "type": "github", "target": "org"}, "identifier"),
    ({"identifier": "x", "type": "github", "target": "org", "owner": "me"}, "owner"),
])
def test_bad_registrations_name_the_field(admin_api, body, field):
    answer = admin_api.post(LOCATIONS, body, format="json")
    assert answer.status_code == 422
    assert answer.json()["ok"] is False and answer.json()["message"].startswith(f"{field}:")


def test_a_second_registration_conflicts_and_unknown_ones_are_404(admin_api):
    body = {"identifier": "org", "type": "github", "target": "example"}
    assert admin_api.post(LOCATIONS, body, format="json").status_code == 201
    assert admin_api.post(LOCATIONS, body, format="json").status_code == 409
    for answer in (admin_api.get(f"{LOCATIONS}/nope"), admin_api.post(f"{LOCATIONS}/nope/refresh"),
                   admin_api.delete(f"{LOCATIONS}/nope")):
        assert answer.status_code == 404 and answer.json()["ok"] is False


def test_the_list_does_not_grow_in_queries(admin_api, django_assert_max_num_queries, system):
    for i in range(20):
        backstage_location_register(actor=system, data={"identifier": f"org{i}", "type": "github", "target": f"o{i}"})
    with django_assert_max_num_queries(8):
        assert len(admin_api.get(LOCATIONS).json()["locations"]) == 20
    assert Entity.objects.count() == 0
