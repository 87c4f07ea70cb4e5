"""Creating and deactivating a user's API credential (portal.models.ApiClient), each recorded in the audit log.
The credential, its secret check and its access tokens are portal's (portal/services/api_clients.py); these
writers are the catalog's, beside the users they belong to, because portal sits below the audit app."""
import secrets

from django.db import transaction

from audit import choices as audit_choices
from audit.services import audit_record
from portal.models import ApiClient
from portal.services.api_clients import secret_hash


def api_client_create(*, actor, user, is_machine=True):
    """Create a credential for `user`; the plain secret is returned once and never stored."""
    client_id = secrets.token_urlsafe(24)
    secret = secrets.token_urlsafe(48)
    with transaction.atomic():
        client = ApiClient.objects.create(user=user, client_id=client_id, secret_hash=secret_hash(secret), is_machine=is_machine)
        audit_record(
            actor=actor, verb=audit_choices.API_CLIENT_CREATED, action=audit_choices.AuditAction.CREATE,
            resource_type="api_client", identifier=client_id,
            after={"clientId": client_id, "user": user.email, "clientSecret": secret},
        )
    return client, secret


def _api_client_json(client):
    return {"clientId": client.client_id, "user": client.user.email, "isMachine": client.is_machine, "active": client.is_active}


@transaction.atomic
def api_client_deactivate(*, actor, client):
    """Switch a credential off: it can no longer get tokens, and the tokens it has stop working (the token
    check requires an active credential). Deactivating an inactive credential changes and records nothing."""
    client = ApiClient.objects.select_for_update().select_related("user").get(pk=client.pk)
    if not client.is_active:
        return client
    before = _api_client_json(client)
    client.is_active = False
    client.token, client.token_expires_at = "", None
    client.save(update_fields=["is_active", "token", "token_expires_at"])
    audit_record(actor=actor, verb=audit_choices.API_CLIENT_DEACTIVATED, action=audit_choices.AuditAction.UPDATE,
                 resource_type="api_client", identifier=client.client_id, before=before, after=_api_client_json(client))
    return client
