"""Install the starter blueprints and entities (environments, running services, deployments, developer
environments, cloud resources, temporary access), and the Production readiness scorecard on services with the
properties and aggregations it reads. `load_starter` (actions app) runs this, then adds the starter actions.

Loads the founding example first when its `Component` blueprint is missing (running services relate to
it). Only blueprints and entities that do not exist yet are written, so a second run changes nothing and
never resets data people changed since (a locked environment stays locked)."""
import json
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from catalog.models import Blueprint, Entity, Initiative
from catalog.services.blueprints import blueprint_update
from catalog.services.catalog_import import catalog_import
from catalog.services.initiatives import initiative_create
from catalog.services.scorecards import scorecard_create
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
        starter = json.loads(STARTER.read_text())
        try:
            counts = catalog_import(actor=Actor.system(), document=starter_missing(starter))
            extended = starter_extend(starter)
        except PortalError as exc:
            raise CommandError(f"{STARTER}: {exc.message}")
        self.stdout.write(f"Starter catalog: {counts['blueprints']} blueprints and {counts['entities']} entities added.")
        if extended:
            self.stdout.write(f"Starter catalog: added {', '.join(extended)}.")


def starter_extend(document):
    """Properties and aggregation properties the starter adds to blueprints it did not create (the founding
    example's Component), its scorecards and initiatives: each only when missing, so a second run changes nothing and a
    property or scorecard people changed stays theirs. Returns what was added, in words."""
    actor, added = Actor.system(), []
    for extension in document.get("blueprintExtensions", []):
        blueprint = Blueprint.objects.get(identifier=extension["blueprint"])
        properties = {k: v for k, v in extension.get("properties", {}).items()
                      if k not in blueprint.schema.get("properties", {})}
        aggregations = {k: v for k, v in extension.get("aggregationProperties", {}).items()
                        if k not in blueprint.aggregation_properties}
        if properties or aggregations:
            blueprint_update(actor=actor, blueprint=blueprint, partial=True, data={
                "schema": {**blueprint.schema, "properties": {**blueprint.schema.get("properties", {}), **properties}},
                "aggregationProperties": {**blueprint.aggregation_properties, **aggregations}})
            added.append(f"{len(properties) + len(aggregations)} properties on {blueprint.identifier}")
    for item in document.get("scorecards", []):
        blueprint = Blueprint.objects.get(identifier=item["blueprint"])
        if all(s["identifier"] != item["scorecard"]["identifier"] for s in blueprint.scorecards):
            scorecard_create(actor=actor, blueprint=blueprint, data=item["scorecard"])
            added.append(f"the {item['scorecard']['title']} scorecard on {blueprint.identifier}")
    for item in document.get("initiatives", []):
        if not Initiative.objects.filter(identifier=item["identifier"]).exists():
            initiative_create(actor=actor, data=item)
            added.append(f"the initiative {item['title']!r}")
    return added
