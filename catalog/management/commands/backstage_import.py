"""`manage.py backstage_import PATH_OR_URL...`: a one-off import of Backstage descriptors (Location trees
followed), with the Backstage blueprints installed first when missing. Each descriptor that does not
validate is printed with its file, document index and field, and the command then exits with status 1;
the others are imported all the same."""
from django.core.management.base import BaseCommand, CommandError

from catalog.services.backstage import backstage_blueprints_install, backstage_import
from portal.actor import Actor
from portal.errors import PortalError


class Command(BaseCommand):
    help = "Import Backstage catalog-info.yaml descriptors from files or URLs (URLs under BACKSTAGE_URL_ALLOWED_PREFIXES)."

    def add_arguments(self, parser):
        parser.add_argument("targets", nargs="+", metavar="PATH_OR_URL")

    def handle(self, *args, targets, **options):
        actor = Actor.system()
        try:
            installed = backstage_blueprints_install(actor=actor)
            written, errors = backstage_import(actor=actor, targets=targets)
        except PortalError as exc:
            raise CommandError(exc.message)
        if installed:
            self.stdout.write(f"Installed the Backstage blueprints: {', '.join(installed)}.")
        for error in errors:
            where = error.file if error.document is None else f"{error.file} document {error.document}"
            self.stderr.write(f"{where}: {error.field + ': ' if error.field else ''}{error.message}")
        self.stdout.write(f"Imported {len(written)} entities.")
        if errors:
            raise CommandError(f"{len(errors)} descriptors or files could not be imported (listed above).")
