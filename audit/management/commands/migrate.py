"""`migrate` as the database owner: the portal's connections otherwise run as the app's role
(audit/database_role.py), which may not create tables or triggers."""
from django.core.management.commands.migrate import Command as MigrateCommand
from django.db import connections

from audit.database_role import database_owner


class Command(MigrateCommand):
    def handle(self, *args, **options):
        with database_owner(connections[options["database"]]):
            return super().handle(*args, **options)
