"""Every event inserted is pending until it is sealed (audit/chain.py), marked by the database in the same statement:
an AFTER INSERT statement trigger writes the AuditPending rows of the inserted events (a transition table), so a
writer pays one statement for its events, not two, and no insert of an event can leave it unmarked."""
from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_mark_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_auditpending (event_id) SELECT id FROM inserted;
    RETURN NULL;
END
$$;
"""
TRIGGER = ("CREATE TRIGGER audit_auditevent_pending AFTER INSERT ON audit_auditevent REFERENCING NEW TABLE AS inserted "
           "FOR EACH STATEMENT EXECUTE FUNCTION audit_mark_pending();")


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0003_append_only'),
    ]

    operations = [
        migrations.RunSQL(FUNCTION, "DROP FUNCTION audit_mark_pending();"),
        migrations.RunSQL(TRIGGER, "DROP TRIGGER audit_auditevent_pending ON audit_auditevent;"),
    ]
