"""The audit log's hash chain and the redaction of secrets from what it records."""
import pytest
from django.db import connection, transaction

from audit import choices as audit_choices
from audit.models import AuditEvent
from audit.services import REDACTED, audit_chain_verify, audit_record, audit_record_many, audit_event_build, event_hash, redact
from portal.actor import Actor

pytestmark = pytest.mark.django_db


def record(identifier, before=None, after=None, **extra):
    with transaction.atomic():
        return audit_record(actor=Actor.system(), verb=audit_choices.ENTITY_UPDATED, action=audit_choices.AuditAction.UPDATE,
                            resource_type="entity", identifier=identifier, blueprint="Service", before=before, after=after,
                            **extra)


def raw_update(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_events_chain_each_to_the_one_before():
    first = record("a", after={"v": 1})
    second = record("b", after={"v": 2})
    with transaction.atomic():
        third, fourth = audit_record_many([
            audit_event_build(actor=Actor.system(), verb=audit_choices.ENTITY_CREATED, action="CREATE", resource_type="entity",
                              identifier=name, after={"v": 3})
            for name in ("c", "d")
        ])
    assert first.previous_hash == ""
    assert second.previous_hash == first.hash
    assert third.previous_hash == second.hash and fourth.previous_hash == third.hash
    assert len({first.hash, second.hash, third.hash, fourth.hash}) == 4
    assert fourth.hash == event_hash(third.hash, AuditEvent.objects.get(pk=fourth.pk))  # as stored, re-read
    assert audit_chain_verify() is None


@pytest.mark.django_db(transaction=True)
def test_audit_record_refuses_to_run_outside_a_transaction():
    with pytest.raises(AssertionError):
        audit_record(actor=Actor.system(), verb=audit_choices.ENTITY_UPDATED, action="UPDATE", resource_type="entity",
                     identifier="x")
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("sql, params", [
    ("UPDATE audit_auditevent SET diff = jsonb_set(diff, '{after,replicas}', '9') WHERE identifier = %s", ["b"]),
    ("UPDATE audit_auditevent SET actor = 'someone-else@example.com' WHERE identifier = %s", ["b"]),
    ("UPDATE audit_auditevent SET message = 'nothing to see' WHERE identifier = %s", ["b"]),
    ("UPDATE audit_auditevent SET status = 'SUCCESS' WHERE identifier = %s", ["b"]),
])
def test_tampering_with_an_event_is_detected(sql, params):
    record("a", before=None, after={"replicas": 1})
    tampered = record("b", before={"replicas": 1}, after={"replicas": 2}, status=audit_choices.AuditStatus.FAILURE)
    record("c", after={"replicas": 3})
    assert audit_chain_verify() is None
    raw_update(sql, params)
    assert audit_chain_verify() == tampered


def test_rehashing_a_tampered_event_breaks_the_next_link():
    record("a", after={"replicas": 1})
    tampered = record("b", after={"replicas": 2})
    following = record("c", after={"replicas": 3})
    raw_update("UPDATE audit_auditevent SET diff = jsonb_set(diff, '{after,replicas}', '9') WHERE id = %s", [tampered.pk])
    forged = AuditEvent.objects.get(pk=tampered.pk)
    raw_update("UPDATE audit_auditevent SET hash = %s WHERE id = %s", [event_hash(forged.previous_hash, forged), tampered.pk])
    assert audit_chain_verify() == following


def test_deleting_an_event_is_detected():
    record("a")
    removed = record("b")
    following = record("c")
    raw_update("DELETE FROM audit_auditevent WHERE id = %s", [removed.pk])
    assert audit_chain_verify() == following


def test_redact_replaces_secret_looking_keys_at_any_depth():
    value = {
        "name": "svc",
        "clientSecret": "s3cr3t",
        "nested": {"api-key": "k", "apiKey": "k", "password": "p", "tokenUrl": "u", "plain": "keep"},
        "list": [{"private_key": "pk"}, {"credentials": ["a"]}, "keep"],
    }
    assert redact(value) == {
        "name": "svc",
        "clientSecret": REDACTED,
        "nested": {"api-key": REDACTED, "apiKey": REDACTED, "password": REDACTED, "tokenUrl": REDACTED, "plain": "keep"},
        "list": [{"private_key": REDACTED}, {"credentials": REDACTED}, "keep"],
    }
    assert redact("plain") == "plain" and redact(None) is None


def test_redact_knows_the_headers_that_carry_credentials():
    headers = {"Authorization": "Bearer a", "Proxy-Authorization": "Basic b", "Cookie": "s=c", "Set-Cookie": "s=d",
               "X-Api-Key": "e", "X-Auth-Token": "f", "PRIVATE-TOKEN": "g", "X-Webhook-Secret": "h", "auth": "i:j",
               "AWS_ACCESS_KEY_ID": "k", "Author": "keep", "Content-Type": "keep"}
    assert redact(headers) == {**dict.fromkeys(headers, REDACTED), "Author": "keep", "Content-Type": "keep"}


def test_recorded_diffs_and_context_are_redacted_and_still_chain():
    event = record("svc", before={"webhookSecret": "old", "url": "https://a"}, after={"webhookSecret": "new", "url": "https://b"},
                   context={"authToken": "t", "blueprintIdentifier": "Service"})
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.diff == {"before": {"webhookSecret": REDACTED, "url": "https://a"},
                           "after": {"webhookSecret": REDACTED, "url": "https://b"}}
    assert stored.context == {"authToken": REDACTED, "blueprintIdentifier": "Service"}
    assert "old" not in str(stored.diff) and "new" not in str(stored.diff)
    assert audit_chain_verify() is None


def test_api_client_secret_never_reaches_the_log(admin_user):
    from portal.services.api_clients import api_client_create

    _, secret = api_client_create(actor=Actor.system(), user=admin_user)
    event = AuditEvent.objects.get(verb=audit_choices.API_CLIENT_CREATED)
    assert event.diff["after"]["clientSecret"] == REDACTED
    assert secret not in str(event.diff)
