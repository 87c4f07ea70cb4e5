"""Sealing the audit log after commit (audit/chain.py): one sealer, gap-free positions, every stored field hashed."""
import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction

from audit import choices as audit_choices
from audit.chain import HASHED_FIELDS, SEAL_LOCK, audit_chain_verify, audit_seal
from audit.models import AuditEvent, AuditPending, AuditSeal
from audit.services import audit_event_build, audit_record, audit_record_many
from audit.tasks import audit_seal_task
from portal.actor import Actor
from tests.audit.tampering import tamper


def record(identifier="svc", **extra):
    return audit_record(actor=Actor.system(), verb=audit_choices.ENTITY_UPDATED, action=audit_choices.AuditAction.UPDATE,
                        resource_type="entity", identifier=identifier, blueprint="Service", after={"v": identifier},
                        **extra)


def positions():
    return list(AuditSeal.objects.order_by("position").values_list("position", "event_id"))


@pytest.mark.django_db(transaction=True)
def test_an_event_is_sealed_after_its_transaction_commits_not_before():
    with transaction.atomic():
        event = record("a")
        assert AuditPending.objects.filter(event=event).exists()
        assert not AuditSeal.objects.exists()  # writers never touch the chain
    assert positions() == [(1, event.pk)]
    assert not AuditPending.objects.exists()
    assert audit_chain_verify().fault is None


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_event_is_never_sealed_and_leaves_no_gap():
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            record("rolled-back")
            raise RuntimeError("the service failed")
    assert not AuditEvent.objects.exists() and not AuditPending.objects.exists()
    assert audit_seal(wait=True) == 0
    with transaction.atomic():
        kept = record("kept")
    assert positions() == [(1, kept.pk)]
    assert audit_chain_verify().fault is None


@pytest.mark.django_db(transaction=True)
def test_events_committed_while_another_sealer_runs_are_sealed_by_the_beat_task():
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [SEAL_LOCK])
        with transaction.atomic():
            event = record("while-locked")
        assert not AuditSeal.objects.exists()  # the on-commit try-lock found the lock taken and left it
        assert audit_chain_verify(unsealed_grace=timedelta(0)).fault.event_id == event.pk
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [SEAL_LOCK])
    finally:
        other.close()
    assert audit_seal_task() == 1
    assert positions() == [(1, event.pk)]
    assert audit_chain_verify(unsealed_grace=timedelta(0)).fault is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_get_gap_free_positions():
    threads_count, transactions_each = 8, 10
    errors = []

    def write(worker):
        try:
            for number in range(transactions_each):
                with transaction.atomic():
                    audit_record_many([
                        audit_event_build(actor=Actor.system(), verb=audit_choices.ENTITY_CREATED, action="CREATE",
                                          resource_type="entity", identifier=f"w{worker}-{number}-{part}")
                        for part in range(1 + number % 2)
                    ])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    audit_seal(wait=True)
    written = threads_count * sum(1 + number % 2 for number in range(transactions_each))
    sealed = positions()
    assert AuditEvent.objects.count() == written
    assert [position for position, _ in sealed] == list(range(1, written + 1))
    assert len({event_id for _, event_id in sealed}) == written
    assert not AuditPending.objects.exists()
    verification = audit_chain_verify()
    assert verification.fault is None and verification.length == written


def test_the_hash_covers_every_stored_column():
    assert set(HASHED_FIELDS) == {field.attname for field in AuditEvent._meta.concrete_fields}


CHANGES = {
    "id": "id = id + 1000000",
    "at": "at = at + interval '1 microsecond'",
    "context": """context = '{"forged": true}'::jsonb""",
    "diff": """diff = '{"before": null, "after": null}'::jsonb""",
}


@pytest.mark.django_db
@pytest.mark.parametrize("column", HASHED_FIELDS)
def test_changing_any_one_column_is_detected_naming_the_event(column):
    with transaction.atomic():
        record("a")
        target = record("b", run_id="r1", context={"k": 1}, message="m", status=audit_choices.AuditStatus.FAILURE)
        record("c")
    audit_seal(wait=True)
    assert audit_chain_verify().fault is None
    tamper(f"UPDATE audit_auditevent SET {CHANGES.get(column, f'{column} = {column} || {chr(39)}x{chr(39)}')} WHERE id = %s",
           [target.pk])
    fault = audit_chain_verify().fault
    assert fault is not None and (fault.event_id, fault.position) == (target.pk, 2), fault
    assert f"event {target.pk}" in str(fault)
    if column == "id":  # put it back: Django's TestCase checks the seal's foreign key before its rollback
        tamper("UPDATE audit_auditevent SET id = %s WHERE id = %s", [target.pk, target.pk + 1000000])


@pytest.mark.django_db
@pytest.mark.parametrize("count", [6, 7])
def test_one_seal_call_seals_every_pending_event_batch_by_batch(monkeypatch, count):
    monkeypatch.setattr("audit.chain.BATCH", 3)  # a whole last batch, and a short one
    with transaction.atomic():
        events = [record(f"e{number}") for number in range(count)]
    assert audit_seal(wait=True) == count
    assert positions() == [(number + 1, event.pk) for number, event in enumerate(events)]
    assert not AuditPending.objects.exists() and audit_chain_verify().fault is None


@pytest.mark.django_db
def test_events_are_stored_as_built_every_column_in_order():
    """audit_record_many's one prepared INSERT writes every stored column (none left to a default) of each event,
    in order, and gives each built event its id; odd text and JSON come back as they went in."""
    from audit.services import _INSERT_SQL

    assert {f.column for f in AuditEvent._meta.concrete_fields} - {"id"} <= set(
        _INSERT_SQL.split("(", 1)[1].split(")", 1)[0].replace(" ", "").split(","))
    odd = {"emoji": "🚀", "quote": "it's \"quoted\"", "backslash": "C:\\path", "big": 10**30, "nested": [[[{}]]]}
    built = [audit_event_build(actor=Actor.system(), verb=audit_choices.ENTITY_UPDATED,
                               action=audit_choices.AuditAction.UPDATE, resource_type="entity",
                               identifier=f"svc/{n}'; --", blueprint="Service", before={"n": n}, after=odd,
                               context={"n": n, "odd": odd}, message=f"line one\nline {n}")
             for n in range(3)]
    stored = audit_record_many(built)
    assert [e.pk for e in stored] == sorted(e.pk for e in stored) and all(e.pk for e in stored)
    for event in stored:
        again = AuditEvent.objects.get(pk=event.pk)
        assert {name: getattr(again, name) for name in HASHED_FIELDS} == {name: getattr(event, name) for name in HASHED_FIELDS}
    assert AuditPending.objects.filter(event_id__in=[e.pk for e in stored]).count() == 3
