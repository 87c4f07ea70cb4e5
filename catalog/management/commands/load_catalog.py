import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from catalog.services.catalog_import import catalog_import
from portal.actor import Actor
from portal.errors import PortalError

SEED = Path(__file__).resolve().parents[2] / "fixtures" / "seed-catalog.json"


class Command(BaseCommand):
    help = ("Load blueprints and entities from a catalog JSON file (default: the founding example catalog); the "
            "catalog's tables are analyzed afterwards (a bulk load: the planner learns what was loaded).")

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", default=str(SEED))

    def handle(self, *args, path, **options):
        try:
            document = json.loads(Path(path).read_text())
            counts = catalog_import(actor=Actor.system(), document=document, analyze_min_entities=1)
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}")
        except PortalError as exc:
            raise CommandError(f"{path}: {exc.message}")
        analyzed = f" Analyzed {', '.join(counts['analyzed'])}." if counts["analyzed"] else ""
        self.stdout.write(f"Loaded {counts['blueprints']} blueprints and {counts['entities']} entities from {path}.{analyzed}")
