"""Webhook signatures as Port signs them (PORT_API.md "Webhook signature").

The key is, in order: `settings.WEBHOOK_SIGNING_SECRET`; else the admin-managed Secret named
`WEBHOOK_SIGNING_SECRET`; else a key derived from SECRET_KEY (HKDF-SHA256, hex) — stable for as long as
SECRET_KEY is, and readable with `python manage.py shell -c "from actions.backends.signing import
signing_secret; print(signing_secret())"` for receivers to verify with. Configure one of
the first two in production so receivers do not depend on SECRET_KEY.
"""
import base64
import hashlib
import hmac
import json
import time

from django.conf import settings

SIGNING_SECRET_NAME = "WEBHOOK_SIGNING_SECRET"


def body_bytes(body) -> bytes:
    """The body as sent and signed: compact, non-ASCII escaped, keys in the template's order."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def signing_secret() -> str:
    configured = getattr(settings, "WEBHOOK_SIGNING_SECRET", "")
    if configured:
        return configured
    from actions.secrets import derive_key, secret_value

    stored = secret_value(SIGNING_SECRET_NAME)
    if stored:
        return stored
    return derive_key(b"portal webhook signing v1").hex()


def signature(secret: str, timestamp: str, raw_body: bytes) -> str:
    message = timestamp.encode() + b"." + raw_body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(raw_body: bytes, *, secret=None, now=None) -> dict:
    timestamp = str(int(now if now is not None else time.time()))
    return {"x-port-timestamp": timestamp,
            "x-port-signature": signature(secret if secret is not None else signing_secret(), timestamp, raw_body)}
