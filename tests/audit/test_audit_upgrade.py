"""Upgrading a database whose events were chained in AuditEvent itself: migration audit 0002 re-seals them."""
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from audit.chain import audit_chain_verify, seal_hash
from audit.models import AuditEvent, AuditSeal

pytestmark = pytest.mark.django_db(transaction=True)


def test_migration_reseals_existing_events_in_id_order():
    call_command("migrate", "audit", "0001", verbosity=0)
    try:
        old_apps = MigrationExecutor(connection).loader.project_state([("audit", "0001_initial")]).apps
        OldEvent = old_apps.get_model("audit", "AuditEvent")
        for number in range(3):
            # The old chain's columns hold whatever the old code wrote; the new chain does not read them.
            OldEvent.objects.create(at=timezone.now(), actor="a@example.com", verb="catalog.entity.updated", action="UPDATE",
                                    resource_type="entity", identifier=f"e{number}", run_id="r", context={"n": number},
                                    previous_hash="old", hash=f"old{number}")
    finally:
        call_command("migrate", "audit", verbosity=0)
    events = list(AuditEvent.objects.order_by("id"))
    seals = list(AuditSeal.objects.order_by("position"))
    assert [(seal.position, seal.event_id) for seal in seals] == [(n + 1, event.pk) for n, event in enumerate(events)]
    previous = ""
    for seal, event in zip(seals, events):
        assert (seal.previous_hash, seal.hash) == (previous, seal_hash(previous, event))
        previous = seal.hash
    verification = audit_chain_verify()
    assert verification.fault is None and verification.length == 3
    with connection.cursor() as cursor:  # migrate ran as the owner and handed the connection back to the app's role
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == "portal_app"
