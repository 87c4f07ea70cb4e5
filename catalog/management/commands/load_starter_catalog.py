"""Install the starter blueprints and entities (environments, running services, deployments, developer
environments, cloud resources, temporary access). `load_starter` (actions app) runs this, then adds the starter actions.

Loads the founding example first when its `Component` blueprint is missing (running services relate to
it). Only blueprints and entities that do not exist yet are written, so a second run changes nothing and
never resets data people changed since (a locked environment stays locked)."""
import json
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from catalog.models import Blueprint, Entity
from catalog.services.catalog_import import catalog_import
from portal.actor import Actor
from portal.errors import PortalError

STARTER = Path(__file__).resolve().parents[2] / "fixtures" / "starter-catalog.json"


def starter_missing(document):
    """The part of `document` not in the database yet: new blueprints, and entities not present."""
    existing = set(Blueprint.objects.values_list("identifier", flat=True))
    present = set(Entity.objects.filter(blueprint__identifier__in={i["blueprint"] for i in document.get("entities", [])},
                                        is_stub=False).values_list("blueprint__identifier", "identifier"))
    return {
        "blueprints": [b for b in document.get("blueprints", []) if b["identifier"] not in existing],
        "entities": [i for i in document.get("entities", []) if (i["blueprint"], i["entity"]["identifier"]) not in present],
    }


class Command(BaseCommand):
    help = "Install the starter blueprints and entities (loads the founding example catalog first if it is missing). Idempotent."

    def handle(self, *args, **options):
        if not Blueprint.objects.filter(identifier="Component").exists():
            call_command("load_catalog", stdout=self.stdout)
        try:
            document = starter_missing(json.loads(STARTER.read_text()))
            counts = catalog_import(actor=Actor.system(), document=document)
        except PortalError as exc:
            raise CommandError(f"{STARTER}: {exc.message}")
        self.stdout.write(f"Starter catalog: {counts['blueprints']} blueprints and {counts['entities']} entities added.")
