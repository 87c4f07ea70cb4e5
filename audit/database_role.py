"""The walls around the audit log that live in PostgreSQL.

The portal connects and then `SET ROLE portal_app` (settings.PORTAL_DB_APP_ROLE): a role that may read and
write every table but only SELECT and INSERT the audit log (audit_auditevent, audit_auditseal). Migrations and
the test suite's flush run as the connecting (owner) role instead, through `database_owner()`. Triggers
(migration audit 0003) refuse UPDATE, DELETE and TRUNCATE of the log whoever asks; TRUNCATE passes only inside
a transaction that set `portal.audit_maintenance = 'on'` (the test suite's flush, settings.AUDIT_FLUSH_ALLOWED).

SET ROLE is a guard, not a boundary: a connection may RESET ROLE. In production give the portal a login role
of its own without those rights (README, "The audit log").
"""
import logging
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError
from django.db.backends.base.base import NO_DB_ALIAS

logger = logging.getLogger(__name__)

APPEND_ONLY_TABLES = ("audit_auditevent", "audit_auditseal")
_owner_depth = 0  # > 0 while a command runs as the owner: connections opened meanwhile keep the owner's rights


def app_role():
    return getattr(settings, "PORTAL_DB_APP_ROLE", "") if _owner_depth == 0 else ""


def app_role_set(sender=None, connection=None, **kwargs):
    """connection_created receiver: drop to the app's role (not on the server-level connection that creates
    and drops databases, and not while a command runs as the owner)."""
    role = app_role()
    if not role or connection.vendor != "postgresql" or connection.alias == NO_DB_ALIAS:
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SET ROLE {connection.ops.quote_name(role)}")
    except DatabaseError as exc:  # the role does not exist yet: this database was never migrated
        logger.warning("database role %s not set (%s); run manage.py migrate", role, str(exc).strip())


@contextmanager
def database_owner(connection):
    """Run as the role the portal logs in with (the owner) rather than the app's role."""
    global _owner_depth
    _owner_depth += 1
    try:
        if connection.connection is not None:
            with connection.cursor() as cursor:
                cursor.execute("RESET ROLE")
        yield
    finally:
        _owner_depth -= 1
        if connection.connection is not None and connection.is_usable():
            app_role_set(connection=connection)


def app_role_grant(connection):
    """Create the app's role when missing and grant it what the portal needs on every table there is now (run
    after every migrate, so tables added later are covered). The log's tables: SELECT and INSERT only."""
    role = getattr(settings, "PORTAL_DB_APP_ROLE", "")
    if not role or connection.vendor != "postgresql":
        return
    name = connection.ops.quote_name(role)
    with connection.cursor() as cursor:
        # A DBA may have created it (then the owner needs no CREATEROLE); another database's migrate (a parallel
        # test run) may create it at the same moment.
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None:
            cursor.execute(f"DO $$ BEGIN CREATE ROLE {name} NOLOGIN; "
                           "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$")
        cursor.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", [role])
        if not cursor.fetchone()[0]:
            cursor.execute(f"GRANT {name} TO CURRENT_USER")  # a non-superuser owner needs membership to SET ROLE
        cursor.execute("SELECT current_schema()")
        schema = connection.ops.quote_name(cursor.fetchone()[0])
        cursor.execute(f"GRANT USAGE ON SCHEMA {schema} TO {name}")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {name}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {name}")
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                       "AND table_name = ANY(%s)", [list(APPEND_ONLY_TABLES)])
        for (table,) in cursor.fetchall():
            cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {connection.ops.quote_name(table)} FROM {name}")


def app_role_grant_after_migrate(sender, using, **kwargs):
    from django.db import connections

    app_role_grant(connections[using])
