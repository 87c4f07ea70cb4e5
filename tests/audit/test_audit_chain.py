"""The audit log's hash chain (audit/chain.py) and the redaction of secrets from what it records."""
import pytest
from django.db import transaction

from audit import choices as audit_choices
from audit.chain import audit_chain_verify, audit_seal, seal_hash
from audit.models import AuditEvent, AuditSeal
from audit.services import REDACTED, audit_event_build, audit_record, audit_record_many, redact
from portal.actor import Actor
from tests.audit.tampering import tamper

pytestmark = pytest.mark.django_db


def record(identifier, before=None, after=None, **extra):
    with transaction.atomic():
        event = audit_record(actor=Actor.system(), verb=audit_choices.ENTITY_UPDATED, action=audit_choices.AuditAction.UPDATE,
                             resource_type="entity", identifier=identifier, blueprint="Service", before=before, after=after,
                             **extra)
    audit_seal(wait=True)  # the test's transaction never commits, so no on-commit sealing: seal here
    return event


def seal_of(event):
    return AuditSeal.objects.get(event=event)


def test_events_chain_each_to_the_one_before():
    first = record("a", after={"v": 1})
    second = record("b", after={"v": 2})
    with transaction.atomic():
        third, fourth = audit_record_many([
            audit_event_build(actor=Actor.system(), verb=audit_choices.ENTITY_CREATED, action="CREATE", resource_type="entity",
                              identifier=name, after={"v": 3})
            for name in ("c", "d")
        ])
    assert audit_seal(wait=True) == 2
    seals = [seal_of(event) for event in (first, second, third, fourth)]
    assert [seal.position for seal in seals] == [1, 2, 3, 4]
    assert seals[0].previous_hash == ""
    assert all(later.previous_hash == earlier.hash for earlier, later in zip(seals, seals[1:]))
    assert len({seal.hash for seal in seals}) == 4
    assert seals[3].hash == seal_hash(seals[2].hash, AuditEvent.objects.get(pk=fourth.pk))  # as stored, re-read
    verification = audit_chain_verify()
    assert verification.fault is None and verification.length == 4 and verification.head_hash == seals[3].hash


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
    assert audit_chain_verify().fault is None
    tamper(sql, params)
    fault = audit_chain_verify().fault
    assert (fault.event_id, fault.position) == (tampered.pk, 2)
    assert "no longer matches its seal" in fault.reason


def test_rehashing_a_tampered_event_breaks_the_next_link():
    record("a", after={"replicas": 1})
    tampered = record("b", after={"replicas": 2})
    following = record("c", after={"replicas": 3})
    tamper("UPDATE audit_auditevent SET diff = jsonb_set(diff, '{after,replicas}', '9') WHERE id = %s", [tampered.pk])
    forged = AuditEvent.objects.get(pk=tampered.pk)
    tamper("UPDATE audit_auditseal SET hash = %s WHERE event_id = %s", [seal_hash(seal_of(tampered).previous_hash, forged), tampered.pk])
    fault = audit_chain_verify().fault
    assert (fault.event_id, fault.position) == (following.pk, 3) and "previous_hash" in fault.reason


def test_deleting_an_event_and_its_seal_is_detected():
    record("a")
    removed = record("b")
    following = record("c")
    tamper("DELETE FROM audit_auditseal WHERE event_id = %s", [removed.pk])
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [removed.pk])
    fault = audit_chain_verify().fault
    assert (fault.event_id, fault.position) == (following.pk, 3) and "position 2 is missing" in fault.reason


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
    assert audit_chain_verify().fault is None


def test_api_client_secret_never_reaches_the_log(admin_user):
    from catalog.services.api_clients import api_client_create

    _, secret = api_client_create(actor=Actor.system(), user=admin_user)
    event = AuditEvent.objects.get(verb=audit_choices.API_CLIENT_CREATED)
    assert event.diff["after"]["clientSecret"] == REDACTED
    assert secret not in str(event.diff)
