import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from catalog import choices
from catalog.services.teams import team_create
from portal.actor import Actor
from portal.services.api_clients import access_token_issue, api_client_create


@pytest.fixture
def system():
    return Actor.system()


def make_user(email, *, admin=False, teams=()):
    user = get_user_model().objects.create_user(username=email, email=email, password="pw")
    if admin:
        user.is_superuser = True
        user.is_staff = True
        user.save()
    for name in teams:
        from catalog.models import Team

        team = Team.objects.filter(name=name).first() or team_create(actor=Actor.system(), data={"name": name})
        team.group.user_set.add(user)
    return user


@pytest.fixture
def admin_user(db):
    return make_user("admin@example.com", admin=True)


@pytest.fixture
def member_user(db):
    return make_user("dev@example.com")


def api_for(user):
    """An APIClient authenticated the way CI is: client credentials → bearer token."""
    client, secret = api_client_create(actor=Actor.system(), user=user)
    token, _ = access_token_issue(client_id=client.client_id, client_secret=secret)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    api.user = user
    return api


@pytest.fixture
def admin_api(admin_user):
    return api_for(admin_user)


@pytest.fixture
def member_api(member_user):
    return api_for(member_user)


@pytest.fixture
def anon_api():
    return APIClient()


__all__ = ["choices", "make_user", "api_for"]
