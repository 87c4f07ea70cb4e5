"""API clients authenticated the way CI is: client credentials -> bearer token."""
from rest_framework.test import APIClient

from portal.services.api_clients import access_token_issue
from tests.factories import ApiClientFactory


def token_of(client):
    """A bearer token for the API credential `client` (an ApiClientFactory, which keeps the plain secret)."""
    token, _ = access_token_issue(client_id=client.client_id, client_secret=client.secret)
    return token


def bearer_api(token, user=None):
    """An APIClient sending `token` as its bearer token; `.user` is whom it acts for."""
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    api.user = user
    return api


def api_for(user):
    """An APIClient authenticated as `user` through a new API credential of theirs."""
    return bearer_api(token_of(ApiClientFactory(user=user)), user)
