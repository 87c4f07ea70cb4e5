"""audit_verify, audit_checkpoint and audit_export (audit/management/commands): tampering the database walls let
through — by the owner, triggers off — is found, and the newest rows cannot be cut off unnoticed."""
import io
import json
import logging
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from audit import choices as audit_choices
from audit.chain import audit_seal, seal_hash
from audit.checkpoints import checkpoint_signature
from audit.models import AuditEvent, AuditSeal
from audit.services import audit_record
from portal.actor import Actor
from tests.audit.tampering import tamper

pytestmark = pytest.mark.django_db


def record(identifier, **extra):
    with transaction.atomic():
        return audit_record(actor=Actor.system(), verb=audit_choices.ENTITY_UPDATED, action="UPDATE", resource_type="entity",
                            identifier=identifier, blueprint="Service", after={"replicas": len(identifier)}, **extra)


@pytest.fixture
def events():
    recorded = [record(name) for name in ("a", "bb", "ccc")]
    audit_seal(wait=True)
    return recorded


@pytest.fixture
def checkpoint_file(tmp_path, settings):
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "audit-checkpoints.jsonl")
    return tmp_path / "audit-checkpoints.jsonl"


def verify(*args):
    out = io.StringIO()
    call_command("audit_verify", *args, stdout=out)
    return out.getvalue()


def refused(*args):
    with pytest.raises(CommandError) as failure:
        verify(*args)
    return str(failure.value)


def checkpoint():
    call_command("audit_checkpoint", stdout=io.StringIO())


def rewrite_and_rehash(event, **changes):
    """Change a stored event, then recompute its seal and every later one, as the owner would."""
    assignments = ", ".join(f"{column} = %s" for column in changes)
    tamper(f"UPDATE audit_auditevent SET {assignments} WHERE id = %s", [*changes.values(), event.pk])
    previous = AuditSeal.objects.get(event=event).previous_hash
    for seal in AuditSeal.objects.filter(position__gte=AuditSeal.objects.get(event=event).position).order_by("position"):
        digest = seal_hash(previous, AuditEvent.objects.get(pk=seal.event_id))
        tamper("UPDATE audit_auditseal SET previous_hash = %s, hash = %s WHERE id = %s", [previous, digest, seal.pk])
        previous = digest


def test_verify_passes_an_intact_chain(events):
    head = AuditSeal.objects.get(event=events[-1]).hash
    assert verify() == f"audit chain intact: 3 events, head hash {head}\n"


def test_verify_names_the_first_changed_event(events):
    tamper("UPDATE audit_auditevent SET actor = 'someone-else' WHERE id = %s", [events[1].pk])
    message = refused()
    assert f"event {events[1].pk}, position 2" in message and "no longer matches its seal" in message


def test_verify_finds_a_seal_whose_event_was_deleted(events):
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [events[2].pk])
    assert f"the seal points at event {events[2].pk}, which is missing" in refused()
    tamper("DELETE FROM audit_auditseal WHERE event_id = %s", [events[2].pk])  # Django checks foreign keys at teardown


def test_verify_finds_an_event_left_unsealed(events):
    late = record("never-sealed")
    tamper("UPDATE audit_auditevent SET at = %s WHERE id = %s", [timezone.now() - timedelta(hours=1), late.pk])
    assert f"event {late.pk}: recorded at" in refused() and "still not sealed" in refused()
    assert "intact" in verify("--unsealed-minutes", "120")


def test_a_rewrite_rehashed_to_the_end_passes_the_chain_but_not_the_checkpoint(events, checkpoint_file):
    checkpoint()
    rewrite_and_rehash(events[1], actor="someone-else")
    assert "intact: 3 events" in verify()  # consistent in itself: only the checkpoint can tell
    message = refused("--checkpoint", str(checkpoint_file))
    assert f"event {events[2].pk}, position 3" in message and "history up to here was rewritten" in message


def test_cutting_off_the_newest_rows_is_found_by_the_checkpoint(events, checkpoint_file):
    checkpoint()
    tamper("DELETE FROM audit_auditseal WHERE event_id = %s", [events[2].pk])
    tamper("DELETE FROM audit_auditevent WHERE id = %s", [events[2].pk])
    assert "intact: 2 events" in verify()
    assert "the chain ends at position 2 but checkpoint line 1" in refused("--checkpoint", str(checkpoint_file))


def test_a_forged_checkpoint_line_is_refused(events, checkpoint_file):
    checkpoint()
    line = json.loads(checkpoint_file.read_text())
    forged = {**line, "position": 99, "hash": "0" * 64}
    with checkpoint_file.open("a") as file:
        file.write(json.dumps(forged) + "\n")
    assert "checkpoint line 2" in refused("--checkpoint", str(checkpoint_file))
    assert "bad signature" in refused("--checkpoint", str(checkpoint_file))


def test_checkpoint_writes_a_signed_head_when_it_moved_and_logs_it(events, checkpoint_file, caplog):
    with caplog.at_level(logging.INFO, logger="audit.checkpoints"):
        checkpoint()
    checkpoint()  # head unchanged: no second line
    record("dddd")
    checkpoint()  # sealed first, then written
    lines = [json.loads(text) for text in checkpoint_file.read_text().splitlines()]
    assert [line["position"] for line in lines] == [3, 4]
    for line in lines:
        assert line["hash"] == AuditSeal.objects.get(position=line["position"]).hash
        assert line["hmac"] == checkpoint_signature(position=line["position"], digest=line["hash"], at=line["at"])
    assert any(f'"hash": "{lines[0]["hash"]}"' in message for message in caplog.messages)
    assert "2 checkpoint position(s) agree" in verify("--checkpoint", str(checkpoint_file))


def test_export_writes_each_sealed_event_as_a_json_line(events, tmp_path):
    output = tmp_path / "audit.jsonl"
    call_command("audit_export", "--output", str(output), stdout=io.StringIO())
    lines = [json.loads(text) for text in output.read_text().splitlines()]
    assert [(line["position"], line["event"]["id"], line["event"]["identifier"]) for line in lines] == [
        (1, events[0].pk, "a"), (2, events[1].pk, "bb"), (3, events[2].pk, "ccc")]
    assert lines[1]["previous_hash"] == lines[0]["hash"] and lines[2]["hash"] == AuditSeal.objects.get(position=3).hash
    assert lines[0]["event"]["diff"] == {"before": None, "after": {"replicas": 1}} and lines[0]["event"]["actor_type"] == "system"

    stdout = io.StringIO()
    call_command("audit_export", "--since", "2", stdout=stdout)
    assert [json.loads(text)["position"] for text in stdout.getvalue().splitlines()] == [2, 3]
    tamper("UPDATE audit_auditevent SET at = '2020-01-01T00:00:00Z' WHERE id = %s", [events[0].pk])
    stdout = io.StringIO()
    call_command("audit_export", "--since", "2024-01-01", stdout=stdout)
    assert [json.loads(text)["position"] for text in stdout.getvalue().splitlines()] == [2, 3]
    with pytest.raises(CommandError, match="--since"):
        call_command("audit_export", "--since", "yesterday", stdout=io.StringIO())
