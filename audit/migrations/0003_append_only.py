"""The audit log is append-only in the database too: statement triggers refuse UPDATE, DELETE and TRUNCATE of
audit_auditevent and audit_auditseal whoever asks (the owner must disable them first, which is itself visible
and does not help against the chain and its checkpoints). TRUNCATE passes inside a transaction that set
`portal.audit_maintenance = 'on'`: the test suite's flush (audit/management/commands/flush.py).

The app's role (SELECT and INSERT on these tables only) is created and granted after every migrate
(audit/database_role.py), so tables that later migrations add are covered too."""
from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND current_setting('portal.audit_maintenance', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""
TRIGGER = ("CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
           "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_rewrite();")
TABLES = ("audit_auditevent", "audit_auditseal")


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0002_chain_seals'),
    ]

    operations = [
        migrations.RunSQL(FUNCTION, "DROP FUNCTION audit_refuse_rewrite();"),
        *(migrations.RunSQL(TRIGGER.format(table=table), f"DROP TRIGGER {table}_append_only ON {table};") for table in TABLES),
    ]
