"""Admin-managed secrets for templates (`{{ .secrets.NAME }}`): stored Fernet-encrypted, never shown again,
never in an audit diff, and redacted from what runs store.

The key: `settings.PORTAL_ENCRYPTION_KEY` (one or more comma-separated Fernet keys; the first encrypts,
all decrypt, so keys can be rotated), else one derived from SECRET_KEY with HKDF-SHA256. The derived key
also decrypts after an explicit key is configured, so setting one later does not lose existing secrets
(re-save them to re-encrypt under the new key).
"""
import base64
import re

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import transaction

from actions.models import Secret
from audit import choices as audit_choices
from audit.services import REDACTED, audit_record
from portal.errors import PortalError, ValidationFailed

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")  # usable as `.secrets.NAME` in jq; a whole name: fullmatch
MAX_VALUE_LENGTH = 64 * 1024


def derive_key(purpose: bytes) -> bytes:
    """32 bytes for `purpose`, derived from SECRET_KEY (HKDF-SHA256)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(settings.SECRET_KEY.encode())


def _fernet() -> MultiFernet:
    configured = [key.strip() for key in (getattr(settings, "PORTAL_ENCRYPTION_KEY", "") or "").split(",") if key.strip()]
    derived = base64.urlsafe_b64encode(derive_key(b"portal secrets encryption v1"))
    return MultiFernet([Fernet(key) for key in configured] + [Fernet(derived)])


def secret_encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def secret_decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise PortalError("A secret cannot be decrypted with the configured keys (was PORTAL_ENCRYPTION_KEY or "
                          "SECRET_KEY changed?).", code="secret_undecryptable", status=500) from None


def _snapshot(secret):
    return {"name": secret.name, "description": secret.description, "value": REDACTED}


@transaction.atomic
def secret_set(*, actor, name, value, description="") -> Secret:
    """Create the secret `name` or replace its value and description. `value=None` keeps an existing value."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ValidationFailed("must start with a letter or underscore and hold only letters, digits and "
                               "underscores (at most 100), so templates can use it as .secrets.NAME", path="name")
    if not isinstance(description, str):
        raise ValidationFailed("must be a string", path="description")
    secret = Secret.objects.select_for_update().filter(name=name).first()
    if value is None and secret is None:
        raise ValidationFailed("is required for a new secret", path="value")
    if value is not None and (not isinstance(value, str) or not value or len(value) > MAX_VALUE_LENGTH):
        raise ValidationFailed(f"must be a non-empty string of at most {MAX_VALUE_LENGTH} characters", path="value")
    before = _snapshot(secret) if secret is not None else None
    if secret is None:
        secret = Secret(name=name)
    if value is not None:
        secret.value_encrypted = secret_encrypt(value)
    secret.description = description
    secret.save()
    audit_record(
        actor=actor,
        verb=audit_choices.SECRET_UPDATED if before else audit_choices.SECRET_CREATED,
        action=audit_choices.AuditAction.UPDATE if before else audit_choices.AuditAction.CREATE,
        resource_type="secret", identifier=name, before=before, after=_snapshot(secret),
        message="The value was replaced." if before and value is not None else "",
    )
    return secret


@transaction.atomic
def secret_delete(*, actor, secret) -> None:
    secret = Secret.objects.select_for_update().get(pk=secret.pk)
    before = _snapshot(secret)
    secret.delete()
    audit_record(actor=actor, verb=audit_choices.SECRET_DELETED, action=audit_choices.AuditAction.DELETE,
                 resource_type="secret", identifier=before["name"], before=before, after=None)


def secret_value(name: str) -> str | None:
    token = Secret.objects.filter(name=name).values_list("value_encrypted", flat=True).first()
    return secret_decrypt(token) if token is not None else None


def secrets_for_templates() -> dict:
    """{NAME: value}, decrypted: only for rendering a template, never to store or show."""
    return {name: secret_decrypt(token) for name, token in Secret.objects.values_list("name", "value_encrypted")}


def secrets_scrub(value, revealed=()):
    """Copy of a JSON value a run is about to store (a payload, a receiver's answer, a log line, a label) with
    every admin-managed secret value, and each text of `revealed` (rendered from secrets, see
    actions.templating.TemplateRenderer), replaced by "[redacted]": a receiver may echo what it was sent."""
    return redact_secrets(value, [*secrets_for_templates().values(), *revealed])


def redact_secrets(value, secrets):
    """Copy of a JSON value (payload, headers) with every occurrence of a secret value replaced by "[redacted]"."""
    needles = sorted({s for s in (secrets.values() if isinstance(secrets, dict) else secrets) if s}, key=len, reverse=True)
    if not needles:
        return value

    def scrub(item):
        if isinstance(item, str):
            for needle in needles:
                if needle in item:
                    item = item.replace(needle, REDACTED)
            return item
        if isinstance(item, dict):
            return {scrub(key): scrub(child) for key, child in item.items()}
        if isinstance(item, list):
            return [scrub(child) for child in item]
        return item

    return scrub(value)
