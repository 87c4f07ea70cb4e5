"""API credentials: their secrets and the access tokens they are exchanged for. Creating and deactivating one
is audited, so those writers live above the audit app (catalog/services/api_clients.py)."""
import hashlib
import hmac
import secrets
import time
from datetime import timedelta
from functools import lru_cache

import jwt
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.errors import PortalError
from portal.models import ApiClient

JWT_ALGORITHM = "HS256"
# Hand out the same token again while it has at least this long to live.
TOKEN_REUSE_MARGIN = timedelta(minutes=5)


def secret_hash(secret):
    """Client secrets are 384-bit random tokens: a fast digest is enough (no dictionary to attack), and
    agents exchange them before every call, so a slow password KDF would only cost latency."""
    return "sha256$" + hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret, stored):
    return hmac.compare_digest(secret_hash(secret or ""), stored)


def access_token_issue(*, client_id, client_secret):
    """Exchange credentials for a signed JWT; one active token per credential."""
    client = ApiClient.objects.select_related("user").filter(client_id=client_id, is_active=True).first()
    if client is None or not client.user.is_active or not secret_matches(client_secret, client.secret_hash):
        raise PortalError("Invalid clientId or clientSecret.", code="unauthorized", status=401)
    now = timezone.now()
    with transaction.atomic():
        client = ApiClient.objects.select_for_update().get(pk=client.pk)
        if (client.token and client.token_expires_at and client.token_expires_at - now > TOKEN_REUSE_MARGIN
                and _signed_with_current_key(client.token)):
            return client.token, int((client.token_expires_at - now).total_seconds())
        expires_at = now + timedelta(seconds=settings.ACCESS_TOKEN_TTL_SECONDS)
        claims = {
            "sub": str(client.user_id),
            "email": client.user.email,
            "clientId": client.client_id,
            "isMachine": client.is_machine,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": secrets.token_hex(8),
        }
        client.token = jwt.encode(claims, settings.SECRET_KEY, algorithm=JWT_ALGORITHM)
        client.token_expires_at = expires_at
        client.save(update_fields=["token", "token_expires_at"])
    return client.token, settings.ACCESS_TOKEN_TTL_SECONDS


def _signed_with_current_key(token):
    """False for a token signed before SECRET_KEY changed: the API would refuse it, so it is not handed out again."""
    try:
        access_token_decode(token)
    except jwt.PyJWTError:
        return False
    return True


def access_token_decode(token):
    """The claims of a token signed with SECRET_KEY and not expired; jwt.PyJWTError otherwise. Every API call
    decodes its token: the signature check and parse of a given token string are done once per process (a
    verdict that cannot change while SECRET_KEY stays), its expiry against the clock on every call."""
    claims = _claims_verified(token, settings.SECRET_KEY)
    if claims["exp"] <= time.time():
        raise jwt.ExpiredSignatureError("Signature has expired")
    return dict(claims)


@lru_cache(maxsize=4096)
def _claims_verified(token, key):
    """Signature, algorithm, required and time claims but expiry (nbf and iat, which a passing token keeps
    passing as time goes on), as jwt.decode checks them; `exp` must be a number. A refused token is not kept."""
    claims = jwt.decode(token, key, algorithms=[JWT_ALGORITHM], options={"require": ["exp", "sub"], "verify_exp": False})
    if isinstance(claims["exp"], bool) or not isinstance(claims["exp"], (int, float)):
        raise jwt.DecodeError("Expiration Time claim (exp) must be a number.")
    return claims
