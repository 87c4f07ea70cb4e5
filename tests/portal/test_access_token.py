import json
from datetime import timedelta
from io import StringIO

import jwt
import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from portal.models import ApiClient

pytestmark = pytest.mark.django_db


def create_client(*args):
    out = StringIO()
    call_command("create_api_client", *args, stdout=out)
    return json.loads(out.getvalue())


def test_create_api_client_prints_credentials_once_and_stores_a_hash():
    credentials = create_client("--email", "ci@example.com", "--admin", "--team", "Platform")
    stored = ApiClient.objects.get(client_id=credentials["clientId"])
    assert stored.user.email == "ci@example.com" and stored.user.is_superuser or stored.user.groups.filter(name="Admins").exists()
    assert credentials["clientSecret"] not in stored.secret_hash
    assert stored.user.groups.filter(name="Platform").exists()
    event = AuditEvent.objects.get(verb="portal.api_client.created")
    assert event.diff["after"]["clientSecret"] == "[redacted]"
    assert credentials["clientSecret"] not in json.dumps(list(AuditEvent.objects.values("diff", "message")))


def test_token_exchange_and_reuse():
    credentials = create_client("--email", "ci@example.com")
    api = APIClient()
    response = api.post("/v1/auth/access_token", credentials, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["ok"] is True and body["tokenType"] == "Bearer" and body["expiresIn"] == 10800
    claims = jwt.decode(body["accessToken"], options={"verify_signature": False})
    assert claims["isMachine"] is True and claims["email"] == "ci@example.com"
    again = api.post("/v1/auth/access_token", credentials, format="json").json()
    assert again["accessToken"] == body["accessToken"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {body['accessToken']}")
    assert api.get("/v1/blueprints").status_code == 200


def test_token_is_renewed_when_close_to_expiry():
    credentials = create_client("--email", "ci@example.com")
    api = APIClient()
    first = api.post("/v1/auth/access_token", credentials, format="json").json()["accessToken"]
    ApiClient.objects.update(token_expires_at=timezone.now() + timedelta(minutes=1))
    second = api.post("/v1/auth/access_token", credentials, format="json").json()["accessToken"]
    assert second != first


@pytest.mark.parametrize("body", [{"clientId": "nope", "clientSecret": "x"}, {"clientId": "", "clientSecret": ""}, {}])
def test_bad_credentials(body):
    create_client("--email", "ci@example.com")
    response = APIClient().post("/v1/auth/access_token", body, format="json")
    assert response.status_code in (401, 422)
    assert response.json()["ok"] is False


def test_wrong_secret_is_401():
    credentials = create_client("--email", "ci@example.com")
    response = APIClient().post("/v1/auth/access_token", {**credentials, "clientSecret": "wrong"}, format="json")
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"


@pytest.mark.parametrize("header", ["Bearer not-a-jwt", "Basic abc", "Bearer "])
def test_bad_tokens_are_401(header):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get("/v1/blueprints")
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"


def test_deactivated_client_token_stops_working():
    credentials = create_client("--email", "ci@example.com")
    api = APIClient()
    token = api.post("/v1/auth/access_token", credentials, format="json").json()["accessToken"]
    ApiClient.objects.update(is_active=False)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/v1/blueprints").status_code == 401


def test_session_auth_works_for_pages(member_user):
    api = APIClient()
    api.force_login(member_user)
    assert api.get("/v1/blueprints").status_code == 200


def test_rate_limit_refuses_with_retry_after(settings, admin_api):
    settings.API_RATE_LIMIT = 3
    statuses = [admin_api.get("/v1/blueprints").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = admin_api.get("/v1/blueprints")
    assert refused.json()["error"] == "too_many_requests" and int(refused.headers["Retry-After"]) >= 0
    assert refused.headers["x-ratelimit-remaining"] == "0"


def test_a_token_carries_who_its_user_is_now():
    """Admin-ness comes from the Admins team (or superuser) at each request; a deactivated user's token stops."""
    from django.contrib.auth.models import Group

    credentials = create_client("--email", "ci@example.com")
    api = APIClient()
    token = api.post("/v1/auth/access_token", credentials, format="json").json()["accessToken"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    blueprint = {"identifier": "svc", "title": "Service", "schema": {"properties": {}}}
    assert api.post("/v1/blueprints", blueprint, format="json").status_code == 403  # a member may not
    user = ApiClient.objects.get().user
    user.groups.add(Group.objects.get_or_create(name="Admins")[0])
    assert api.post("/v1/blueprints", blueprint, format="json").status_code == 201
    assert api.get("/v1/blueprints/svc").json()["blueprint"]["identifier"] == "svc"
    user.is_active = False
    user.save()
    assert api.get("/v1/blueprints").status_code == 401


def test_a_new_secret_key_hands_out_a_token_signed_with_it(settings):
    """After SECRET_KEY changes (a demo upgraded off the old derived key, a rotation), the same credentials get a
    working token at once, not the stored one the new key refuses for the rest of its life."""
    credentials = create_client("--email", "ci@example.com")
    api = APIClient()
    old = api.post("/v1/auth/access_token", credentials, format="json").json()["accessToken"]
    settings.SECRET_KEY = "a-new-key-" + "x" * 50
    new = api.post("/v1/auth/access_token", credentials, format="json").json()["accessToken"]
    assert new != old
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {new}")
    assert api.get("/v1/blueprints").status_code == 200


def test_a_token_accepted_before_expires_all_the_same(monkeypatch):
    """A token's signature is checked once per process, its expiry on every call: one accepted a moment ago is
    refused once its `exp` has passed, and one signed with a key no longer current is refused though it was
    accepted under that key."""
    from portal.services import api_clients

    credentials = create_client("--email", "ci@example.com")
    api = APIClient()
    token = api.post("/v1/auth/access_token", credentials, format="json").json()["accessToken"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/v1/blueprints").status_code == 200
    expiry = jwt.decode(token, options={"verify_signature": False})["exp"]
    monkeypatch.setattr(api_clients.time, "time", lambda: expiry + 1)
    refused = api.get("/v1/blueprints")
    assert refused.status_code == 401 and "expired" in refused.json()["message"]
    monkeypatch.undo()
    assert api.get("/v1/blueprints").status_code == 200


def test_a_token_without_a_numeric_expiry_is_refused(settings):
    from django.contrib.auth import get_user_model

    create_client("--email", "ci@example.com")
    client = ApiClient.objects.get()
    user = get_user_model().objects.get(email="ci@example.com")
    for exp in ("tomorrow", True, None):
        forged = jwt.encode({"sub": str(user.pk), "clientId": client.client_id, "exp": exp}, settings.SECRET_KEY,
                            algorithm="HS256")
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
        assert api.get("/v1/blueprints").status_code == 401, exp


def test_a_token_of_a_key_no_longer_current_is_refused_though_accepted_before(settings):
    credentials = create_client("--email", "ci@example.com")
    api = APIClient()
    token = api.post("/v1/auth/access_token", credentials, format="json").json()["accessToken"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/v1/blueprints").status_code == 200
    settings.SECRET_KEY = "a-rotated-key-" + "y" * 50
    assert api.get("/v1/blueprints").status_code == 401
