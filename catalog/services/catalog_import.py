"""Load a catalog file ({"blueprints": [...], "entities": [{"blueprint", "entity"}]}) in any order."""
from django.db import transaction

from catalog.models import Blueprint
from catalog.services.blueprints import blueprint_create, blueprint_update
from catalog.services.entities import UPSERT, entities_write
from catalog.services.table_statistics import BULK_ANALYZE_MIN_ENTITIES, catalog_tables_analyze
from portal.retry import retry_on_conflict

# Keys that may point at blueprints not created yet; applied in a second pass.
LATE_KEYS = ("relations", "mirrorProperties", "aggregationProperties", "ownership")
# Keys that follow other blueprints' relations, set in that second pass: applied in a third.
LAST_KEYS = ("mirrorProperties", "aggregationProperties")


@retry_on_conflict
@transaction.atomic
def catalog_import(*, actor, document, analyze_min_entities=BULK_ANALYZE_MIN_ENTITIES):
    """Create or update every blueprint, then upsert every entity. Idempotent; returns counts. When it wrote at
    least `analyze_min_entities` entities (a bulk load), the catalog's tables are analyzed in the same transaction
    (catalog/services/table_statistics.py), so the planner knows what was loaded as soon as it is visible."""
    blueprints = document.get("blueprints", [])
    existing = set(Blueprint.objects.values_list("identifier", flat=True))
    for data in blueprints:
        if data["identifier"] not in existing:
            first_pass = {k: v for k, v in data.items() if k not in LATE_KEYS and k != "calculationProperties"}
            blueprint_create(actor=actor, data=first_pass)
    for data in blueprints:
        blueprint_update(actor=actor, blueprint=Blueprint.objects.get(identifier=data["identifier"]),
                         data={k: v for k, v in data.items() if k not in LAST_KEYS}, partial=True)
    for data in blueprints:
        last = {k: data[k] for k in LAST_KEYS if k in data}
        if last:
            blueprint_update(actor=actor, blueprint=Blueprint.objects.get(identifier=data["identifier"]), data=last,
                             partial=True)
    by_blueprint = {}
    for item in document.get("entities", []):
        by_blueprint.setdefault(item["blueprint"], []).append(item["entity"])
    written = 0
    # Stubs for not-yet-loaded targets are filled in when their own entry is upserted.
    for identifier, items in by_blueprint.items():
        blueprint = Blueprint.objects.get(identifier=identifier)
        for start in range(0, len(items), 100):
            writes = entities_write(actor=actor, blueprint=blueprint, items=items[start:start + 100], mode=UPSERT,
                                    create_missing_related=True)
            failed = [w for w in writes if w.error is not None]
            if failed:
                raise failed[0].error
            written += len(writes)
    analyzed = catalog_tables_analyze() if written and written >= analyze_min_entities else []
    return {"blueprints": len(blueprints), "entities": written, "analyzed": analyzed}
