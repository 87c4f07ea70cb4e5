"""Reads of API credentials (portal.models.ApiClient, which belong to the catalog's users)."""
from portal.models import ApiClient


def api_client_is_active(client_id):
    return ApiClient.objects.filter(client_id=client_id, is_active=True).exists()
