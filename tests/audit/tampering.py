"""Rewriting the audit log the way an intruder with the owner's credentials would: as the database owner (not the
app's role) with triggers and foreign keys switched off (session_replication_role), inside the current
transaction, so the test's rollback undoes it. The test goes on as the role it was."""
from django.db import connection


def tamper(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        role = cursor.fetchone()[0]
        cursor.execute("SET LOCAL ROLE NONE")
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")
        cursor.execute(f"SET LOCAL ROLE {connection.ops.quote_name(role)}")
