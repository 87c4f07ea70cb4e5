"""The audit log cannot be rewritten through the database: the app's role may only SELECT and INSERT it, and
triggers refuse UPDATE, DELETE and TRUNCATE even to the owner (audit/database_role.py, migration audit 0003)."""
import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit import choices as audit_choices
from audit.chain import audit_seal
from audit.models import AuditEvent, AuditSeal
from audit.services import audit_record
from portal.actor import Actor

pytestmark = pytest.mark.django_db

APP_ROLE = "portal_app"
REWRITES = [
    "UPDATE audit_auditevent SET message = 'nothing to see'",
    "DELETE FROM audit_auditevent",
    "TRUNCATE audit_auditevent CASCADE",
    "UPDATE audit_auditseal SET hash = 'forged'",
    "DELETE FROM audit_auditseal",
    "TRUNCATE audit_auditseal",
]


@pytest.fixture
def sealed_event():
    with transaction.atomic():
        event = audit_record(actor=Actor.system(), verb=audit_choices.ENTITY_UPDATED, action="UPDATE",
                             resource_type="entity", identifier="svc", after={"replicas": 2})
    audit_seal(wait=True)
    return event


def run(sql, *, as_owner=False, maintenance=False):
    """`sql` in a savepoint of the test's transaction (a refusal leaves the transaction usable)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE refuses to run with the fixture's checks pending
        if as_owner:
            cursor.execute("SET LOCAL ROLE NONE")
        if maintenance:
            cursor.execute("SET LOCAL portal.audit_maintenance = 'on'")
        cursor.execute(sql)


def current_user():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        return cursor.fetchone()[0]


def test_the_portal_works_as_the_app_role():
    assert current_user() == APP_ROLE


@pytest.mark.parametrize("sql", REWRITES)
def test_the_app_role_may_not_rewrite_the_log(sealed_event, sql):
    with pytest.raises(DatabaseError, match="permission denied"):
        run(sql)
    assert AuditEvent.objects.get(pk=sealed_event.pk).message == "" and AuditSeal.objects.count() == 1


@pytest.mark.parametrize("sql", REWRITES)
def test_the_triggers_refuse_the_owner_too(sealed_event, sql):
    with pytest.raises(DatabaseError, match="the audit log is append-only: (UPDATE|DELETE|TRUNCATE) on audit_audit"):
        run(sql, as_owner=True)
    assert AuditEvent.objects.get(pk=sealed_event.pk).message == "" and AuditSeal.objects.count() == 1


def test_truncate_passes_in_a_maintenance_transaction_of_the_owner_only(sealed_event):
    with pytest.raises(DatabaseError, match="permission denied"):
        run("TRUNCATE audit_auditseal, audit_auditpending, audit_auditevent", maintenance=True)
    with pytest.raises(DatabaseError, match="append-only: UPDATE"):
        run("UPDATE audit_auditevent SET message = 'x'", as_owner=True, maintenance=True)
    with transaction.atomic():
        run("TRUNCATE audit_auditseal, audit_auditpending, audit_auditevent", as_owner=True, maintenance=True)
        assert not AuditEvent.objects.exists()
        transaction.set_rollback(True)
    assert AuditEvent.objects.filter(pk=sealed_event.pk).exists()


def test_flush_refuses_unless_the_settings_allow_it(settings, sealed_event):
    settings.AUDIT_FLUSH_ALLOWED = False
    with pytest.raises(CommandError, match="append-only"):
        call_command("flush", interactive=False, verbosity=0)
    assert AuditEvent.objects.filter(pk=sealed_event.pk).exists()
