"""Stored date-time and timer property values in the canonical text (UTC, milliseconds, Z), as the write path
now stores them, so that they sort and compare as instants. A value the portal's date-time type refuses
(outside 1970–2999, or not a date-time) is left as it is: readers treat it as "no date", and the next write
of that entity is refused naming it."""
from django.db import migrations

from portal.datetimes import NotAnInstant, instant_canonical

FORMATS = ("date-time", "timer")
BATCH = 1000


def _canonical(definition, value):
    if not isinstance(definition, dict):
        return value
    if isinstance(value, str) and definition.get("format") in FORMATS:
        try:
            return instant_canonical(value)
        except NotAnInstant:
            return value
    if isinstance(value, list) and isinstance(definition.get("items"), dict):
        return [_canonical(definition["items"], item) for item in value]
    if isinstance(value, dict) and isinstance(definition.get("properties"), dict):
        return {key: _canonical(definition["properties"].get(key), item) for key, item in value.items()}
    return value


def _mentions_datetimes(definition):
    text = repr(definition)
    return any(f"'format': '{fmt}'" in text for fmt in FORMATS)


def forwards(apps, schema_editor):
    Blueprint = apps.get_model("catalog", "Blueprint")
    Entity = apps.get_model("catalog", "Entity")
    for blueprint in Blueprint.objects.all():
        definitions = (blueprint.schema or {}).get("properties") or {}
        keys = [key for key, definition in definitions.items() if _mentions_datetimes(definition)]
        if not keys:
            continue
        changed = []
        for entity in Entity.objects.filter(blueprint=blueprint).only("id", "properties").iterator(chunk_size=BATCH):
            properties = {key: _canonical(definitions[key], value) if key in keys else value
                          for key, value in entity.properties.items()}
            if properties != entity.properties:
                entity.properties = properties
                changed.append(entity)
            if len(changed) >= BATCH:
                Entity.objects.bulk_update(changed, ["properties"])
                changed = []
        Entity.objects.bulk_update(changed, ["properties"])


class Migration(migrations.Migration):

    dependencies = [("catalog", "0003_saved_view")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True)]
