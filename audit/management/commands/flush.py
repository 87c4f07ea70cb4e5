"""`flush` for the test suite: the audit log's triggers refuse TRUNCATE unless the transaction sets
`portal.audit_maintenance`, which this does when settings.AUDIT_FLUSH_ALLOWED (tests/settings.py only).
pytest-django's transactional tests flush every table after each test."""
from django.conf import settings
from django.core.management.base import CommandError
from django.core.management.commands.flush import Command as FlushCommand
from django.db import connections, transaction

from audit.database_role import database_owner


class Command(FlushCommand):
    def handle(self, **options):
        if not getattr(settings, "AUDIT_FLUSH_ALLOWED", False):
            raise CommandError("flush would empty the audit log, which is append-only (AUDIT_FLUSH_ALLOWED is off)")
        connection = connections[options["database"]]
        with database_owner(connection), transaction.atomic(using=connection.alias):
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL portal.audit_maintenance = 'on'")
            return super().handle(**options)
