from rest_framework.test import APIClient

from catalog.services.api_clients import api_client_create
from portal.actor import Actor
from portal.services.api_clients import access_token_issue


def api_for(user):
    """An APIClient authenticated the way CI is: client credentials → bearer token."""
    client, secret = api_client_create(actor=Actor.system(), user=user)
    token, _ = access_token_issue(client_id=client.client_id, client_secret=secret)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    api.user = user
    return api
