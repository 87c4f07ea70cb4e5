"""`manage.py load_starter`: the starter catalog (blueprints, environments) and the starter actions, into an
empty portal or onto an existing one. Idempotent: only what is missing is added."""
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from actions.services.starter import starter_actions_install
from portal.actor import Actor
from portal.errors import PortalError


class Command(BaseCommand):
    help = "Install the starter catalog and the starter self-service actions and automations. Idempotent."

    def handle(self, *args, **options):
        call_command("load_starter_catalog", stdout=self.stdout)
        try:
            created = starter_actions_install(actor=Actor.system())
        except PortalError as exc:
            raise CommandError(f"starter actions: {exc.message}")
        self.stdout.write(f"Starter actions: {len(created)} added" + (f" ({', '.join(created)})." if created else "."))
