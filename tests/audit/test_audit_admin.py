"""The audit log in the admin: read-only, with each event's place in the chain."""
import pytest
from django.db import transaction

from audit import choices as audit_choices
from audit.chain import audit_seal
from audit.models import AuditSeal
from audit.services import audit_record
from portal.actor import Actor

pytestmark = pytest.mark.django_db


def test_an_event_page_shows_its_seal_or_that_it_waits_for_one(admin_client):
    with transaction.atomic():
        sealed = audit_record(actor=Actor.system(), verb=audit_choices.ENTITY_UPDATED, action="UPDATE",
                              resource_type="entity", identifier="svc")
    audit_seal(wait=True)
    with transaction.atomic():
        waiting = audit_record(actor=Actor.system(), verb=audit_choices.ENTITY_UPDATED, action="UPDATE",
                               resource_type="entity", identifier="svc")
    seal = AuditSeal.objects.get(event=sealed)
    page = admin_client.get(f"/admin/audit/auditevent/{sealed.pk}/change/").content.decode()
    assert seal.hash in page and "Chain position:</label>" in page and '<div class="readonly">1</div>' in page
    assert "not sealed yet" in admin_client.get(f"/admin/audit/auditevent/{waiting.pk}/change/").content.decode()
    assert admin_client.get("/admin/audit/auditevent/").status_code == 200
