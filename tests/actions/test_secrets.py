"""actions/secrets.py: encrypted storage, audited writes that never hold the value, redaction; the admin."""
import json

import pytest
from cryptography.fernet import Fernet

from actions.models import Secret
from actions.secrets import redact_secrets, secret_decrypt, secret_delete, secret_set, secrets_for_templates
from audit import choices as audit_choices
from audit.models import AuditEvent
from portal.errors import ValidationFailed

pytestmark = pytest.mark.django_db
VALUE = "ghp_Sup3rSecretValue"


def audits():
    return list(AuditEvent.objects.filter(resource_type="secret").order_by("id"))


def row_text(event):
    return json.dumps([event.diff, event.context, event.message])


def test_create_stores_the_value_encrypted_and_audits_without_it(system):
    secret = secret_set(actor=system, name="GITHUB_TOKEN", value=VALUE, description="CI token")
    secret.refresh_from_db()
    assert VALUE not in secret.value_encrypted
    assert secret_decrypt(secret.value_encrypted) == VALUE
    (event,) = audits()
    assert event.verb == audit_choices.SECRET_CREATED and event.action == "CREATE" and event.identifier == "GITHUB_TOKEN"
    assert event.diff == {"before": None, "after": {"name": "GITHUB_TOKEN", "description": "CI token", "value": "[redacted]"}}
    assert VALUE not in row_text(event)


def test_update_replaces_the_value_or_keeps_it(system):
    secret_set(actor=system, name="TOKEN", value="first-value")
    secret_set(actor=system, name="TOKEN", value="second-value", description="rotated")
    assert secrets_for_templates() == {"TOKEN": "second-value"}
    secret_set(actor=system, name="TOKEN", value=None, description="kept")
    assert secrets_for_templates() == {"TOKEN": "second-value"}
    assert Secret.objects.get().description == "kept"
    created, replaced, kept = audits()
    assert replaced.verb == kept.verb == audit_choices.SECRET_UPDATED
    assert replaced.diff["before"]["description"] == "" and replaced.diff["after"]["description"] == "rotated"
    assert replaced.message == "The value was replaced." and kept.message == ""
    assert all(v not in row_text(e) for e in audits() for v in ("first-value", "second-value"))


@pytest.mark.parametrize("name, value, message", [
    ("bad-name", "x", "name:"), ("1ST", "x", "name:"), ("OK", "", "value:"), ("NEW", None, "value: is required"),
])
def test_invalid_input_names_the_field(system, name, value, message):
    with pytest.raises(ValidationFailed) as info:
        secret_set(actor=system, name=name, value=value)
    assert info.value.message.startswith(message)
    assert not Secret.objects.exists() and not audits()


def test_delete_is_audited(system):
    secret = secret_set(actor=system, name="TOKEN", value=VALUE)
    secret_delete(actor=system, secret=secret)
    assert not Secret.objects.exists()
    event = audits()[-1]
    assert event.verb == audit_choices.SECRET_DELETED and event.diff["after"] is None
    assert event.diff["before"]["value"] == "[redacted]"


def test_configured_key_encrypts_and_the_derived_key_still_decrypts(system, settings):
    secret_set(actor=system, name="OLD", value="old-value")  # under the SECRET_KEY-derived key
    key = Fernet.generate_key().decode()
    settings.PORTAL_ENCRYPTION_KEY = key
    new = secret_set(actor=system, name="NEW", value="new-value")
    assert Fernet(key).decrypt(new.value_encrypted.encode()) == b"new-value"
    assert secrets_for_templates() == {"OLD": "old-value", "NEW": "new-value"}


def test_redact_secrets_replaces_values_anywhere():
    payload = {"headers": {"Authorization": f"Bearer {VALUE}"}, "body": {"token": VALUE, "list": [f"x{VALUE}y", 3, None],
                                                                        VALUE: "as key"}}
    redacted = redact_secrets(payload, {"T": VALUE, "EMPTY": ""})
    assert redacted == {"headers": {"Authorization": "Bearer [redacted]"},
                        "body": {"token": "[redacted]", "list": ["x[redacted]y", 3, None], "[redacted]": "as key"}}
    assert VALUE in json.dumps(payload)  # the original is left alone


def test_admin_value_is_write_only(admin_client):
    response = admin_client.post("/admin/actions/secret/add/", {"name": "SLACK_TOKEN", "description": "bot", "value": VALUE})
    assert response.status_code == 302, response.content
    secret = Secret.objects.get(name="SLACK_TOKEN")
    assert secret_decrypt(secret.value_encrypted) == VALUE
    event = audits()[-1]
    assert event.origin == "ADMIN" and event.verb == audit_choices.SECRET_CREATED
    page = admin_client.get(f"/admin/actions/secret/{secret.pk}/change/").content.decode()
    assert VALUE not in page and secret.value_encrypted not in page
    # Saving without a value keeps it.
    response = admin_client.post(f"/admin/actions/secret/{secret.pk}/change/", {"description": "bot token", "value": ""})
    assert response.status_code == 302
    assert secrets_for_templates() == {"SLACK_TOKEN": VALUE}
    assert Secret.objects.get().description == "bot token"


def test_admin_add_needs_a_value_and_a_usable_name(admin_client):
    response = admin_client.post("/admin/actions/secret/add/", {"name": "bad name", "description": "", "value": ""})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"name", "value"}
    assert not Secret.objects.exists()
