"""Blueprint create/update/delete. A change that would leave invalid entities is refused, naming how
many entities block it; removed properties and relations are migrated (their values dropped).

Lock order (catalog/services/row_locks.py): the definition advisory lock ('catalog.blueprints'), then the
blueprint row FOR UPDATE, which waits for the entity writers holding it FOR SHARE and holds off new ones,
so the migration of its entities meets no writer holding their rows; the audit last."""
from django.db import connection, transaction

from audit import choices as audit_choices
from audit.services import audit_record
from catalog.definitions import blueprint_definition_clean
from catalog.models import Blueprint, Entity, Relation, Timer
from catalog.scorecards import scorecard_definition_clean, scorecard_rule_set
from catalog.selectors.blueprints import DEFINITION_FIELDS, blueprint_definitions, blueprint_json
from catalog.selectors.search import rules_validate
from catalog.services.aggregations import aggregated_by_rebuild, aggregates_recompute
from catalog.services.entity_indexes import entity_indexes_follow
from catalog.services.scorecards import scorecards_reevaluate
from catalog.services.permissions import blueprint_permissions_initialize
from catalog.validation import property_json_schema, property_value_errors
from portal import events
from portal.errors import Conflict, ValidationFailed
from portal.retry import retry_on_conflict


def _apply(blueprint, clean):
    for key, field_name in DEFINITION_FIELDS.items():
        setattr(blueprint, field_name, clean[key])


def _dependents(identifier, definitions):
    """Other blueprints whose mirror and aggregation properties follow relations and read other blueprints'
    definitions: re-checked after this blueprint changes."""
    return {bp: d for bp, d in definitions.items()
            if bp != identifier and (d.get("mirrorProperties") or d.get("aggregationProperties"))}


@retry_on_conflict
@transaction.atomic
def blueprint_create(*, actor, data):
    with connection.cursor() as cursor:  # serialise definition changes: they validate against each other
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('catalog.blueprints'))")
    definitions = blueprint_definitions()
    identifier = data.get("identifier") if isinstance(data, dict) else None
    if isinstance(identifier, str) and identifier in definitions:  # anything else is refused by the validation
        raise Conflict(f"Blueprint {identifier!r} already exists.")
    clean = blueprint_definition_clean(data, blueprints=definitions)
    blueprint = Blueprint(identifier=clean["identifier"], created_by=actor.label, updated_by=actor.label)
    _apply(blueprint, clean)
    blueprint.save()
    aggregated_by_rebuild()
    entity_indexes_follow(None, blueprint.schema)
    blueprint_permissions_initialize(blueprint)
    audit_record(actor=actor, verb=audit_choices.BLUEPRINT_CREATED, action=audit_choices.AuditAction.CREATE,
                 resource_type="blueprint", identifier=blueprint.identifier, blueprint=blueprint.identifier,
                 after=blueprint_json(blueprint))
    return blueprint


@retry_on_conflict
@transaction.atomic
def blueprint_update(*, actor, blueprint, data, partial=False):
    """PUT (partial=False) replaces the definition; PATCH merges top-level keys into it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('catalog.blueprints'))")
    blueprint = Blueprint.objects.select_for_update().get(pk=blueprint.pk)
    if not isinstance(data, dict):
        raise ValidationFailed("must be a JSON object", path="body")
    if data.get("identifier", blueprint.identifier) != blueprint.identifier:
        raise ValidationFailed("a blueprint's identifier cannot be changed", path="identifier")
    before = blueprint_json(blueprint)
    if partial:
        merged = {**before, **data}
    else:
        merged = {"identifier": blueprint.identifier, **data}
    merged["identifier"] = blueprint.identifier
    definitions = blueprint_definitions(exclude=blueprint.identifier)
    clean = blueprint_definition_clean(merged, blueprints=definitions)
    with_self = {**definitions, blueprint.identifier: clean}
    for other, definition in _dependents(blueprint.identifier, with_self).items():
        try:
            blueprint_definition_clean(definition, blueprints={k: v for k, v in with_self.items() if k != other})
        except ValidationFailed as exc:
            raise ValidationFailed(f"Blueprint {other!r} would break: {exc.message}")
    migration_notes = _migrate_entities(blueprint, before, clean)
    _apply(blueprint, clean)
    _scorecards_check(blueprint)
    blueprint.updated_by = actor.label
    blueprint.version += 1
    blueprint.save()
    entity_indexes_follow(before["schema"], blueprint.schema)
    if (before["relations"], before["aggregationProperties"]) != (clean["relations"], clean["aggregationProperties"]):
        _aggregations_follow(actor, blueprint)
    scorecards_reevaluate(actor=actor, blueprint=blueprint)
    after = blueprint_json(blueprint)
    audit_record(actor=actor, verb=audit_choices.BLUEPRINT_UPDATED, action=audit_choices.AuditAction.UPDATE,
                 resource_type="blueprint", identifier=blueprint.identifier, blueprint=blueprint.identifier,
                 before=before, after=after, message="; ".join(migration_notes))
    return blueprint


def _aggregations_follow(actor, blueprint):
    """Relations or aggregations changed: who aggregates over what is rebuilt, and every aggregation that did or
    now does depend on this blueprint is recomputed over all its entities."""
    depending = {own for own, _ in blueprint.aggregated_by}
    aggregated_by_rebuild()
    blueprint.refresh_from_db(fields=["aggregated_by"])
    depending |= {own for own, _ in blueprint.aggregated_by}
    for own in sorted(depending):
        aggregates_recompute(actor=actor, blueprint=Blueprint.objects.get(identifier=own))


def _scorecards_check(blueprint):
    """The blueprint's scorecards and the filters of its initiatives still read only what its new definition has."""
    for scorecard in blueprint.scorecards:
        try:
            scorecard_definition_clean(scorecard, blueprint=blueprint)
        except ValidationFailed as exc:
            raise ValidationFailed(f"scorecard {scorecard['identifier']!r} would break: {exc.errors[0]}",
                                   path="scorecards") from None
    for initiative in blueprint.initiatives.exclude(filter=None).order_by("identifier"):
        try:
            rules_validate(scorecard_rule_set(initiative.filter), blueprints=[blueprint], path="filter")
        except ValidationFailed as exc:
            raise ValidationFailed(f"initiative {initiative.identifier!r} would break: {exc.errors[0]}",
                                   path="initiatives") from None


def _semantic(prop):
    return property_json_schema(prop or {})  # what entity values are checked against, at every level


def _blocked(count, what):
    return ValidationFailed(f"{count} entit{'y' if count == 1 else 'ies'} would become invalid; "
                            "update or remove their values first.", path=what, details={"blockingEntities": count})


def _migrate_entities(blueprint, before, clean):
    """Refuse changes existing entities would not satisfy; drop data of removed properties/relations."""
    entities = Entity.objects.filter(blueprint=blueprint)
    old_props, new_props = before["schema"].get("properties", {}), clean["schema"]["properties"]
    notes = []
    for key in new_props:
        if key in old_props and _semantic(old_props[key]) == _semantic(new_props[key]):
            continue
        blocking = sum(1 for value in entities.filter(properties__has_key=key).values_list(f"properties__{key}", flat=True).iterator()
                       if property_value_errors(new_props[key], value))
        if blocking:
            raise _blocked(blocking, f"schema.properties.{key}")
    for key in set(clean["schema"]["required"]) - set(before["schema"].get("required", [])):
        blocking = entities.exclude(properties__has_key=key).count()
        if blocking:
            raise _blocked(blocking, f"schema.required: {key!r}")
    old_rel, new_rel = before["relations"], clean["relations"]
    for key, rel in new_rel.items():
        edges = Relation.objects.filter(source__blueprint=blueprint, relation=key)
        if key in old_rel and old_rel[key]["target"] != rel["target"] and edges.exists():
            raise _blocked(edges.values("source_id").distinct().count(), f"relations.{key}.target")
        if rel.get("required") and not old_rel.get(key, {}).get("required"):
            blocking = entities.exclude(outgoing__relation=key).count()
            if blocking:
                raise _blocked(blocking, f"relations.{key}.required")
        if not rel.get("many") and old_rel.get(key, {}).get("many"):
            from django.db.models import Count

            blocking = edges.values("source_id").annotate(n=Count("id")).filter(n__gt=1).count()
            if blocking:
                raise _blocked(blocking, f"relations.{key}.many")
    for key in set(old_rel) - set(new_rel):
        removed, _ = Relation.objects.filter(source__blueprint=blueprint, relation=key).delete()
        if removed:
            notes.append(f"removed {removed} {key!r} relation edges")
    for key in set(old_props) - set(new_props):
        count = entities.filter(properties__has_key=key).count()
        if count:
            with connection.cursor() as cursor:
                cursor.execute("UPDATE catalog_entity SET properties = properties - %s WHERE blueprint_id = %s AND properties ? %s",
                               [key, blueprint.pk, key])
            notes.append(f"dropped property {key!r} from {count} entities")
    _timers_rebuild(blueprint, clean)
    return notes


def _timers_rebuild(blueprint, clean):
    timer_keys = [k for k, p in clean["schema"]["properties"].items() if p.get("format") == "timer"]
    Timer.objects.filter(entity__blueprint=blueprint).exclude(property__in=timer_keys).delete()
    for key in timer_keys:
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO catalog_timer (entity_id, property, expires_at, fired_at)
                   SELECT id, %s, (properties->>%s)::timestamptz, NULL FROM catalog_entity
                   WHERE blueprint_id = %s AND properties ? %s
                   ON CONFLICT (entity_id, property) DO NOTHING""",
                [key, key, blueprint.pk, key],
            )


@retry_on_conflict
@transaction.atomic
def blueprint_delete(*, actor, blueprint, delete_entities=False):
    blueprint = Blueprint.objects.select_for_update().get(pk=blueprint.pk)
    others = list(Blueprint.objects.exclude(pk=blueprint.pk).order_by("identifier"))
    for what, field in (("relations", "relations"), ("aggregation properties", "aggregation_properties")):
        referencing = [bp.identifier for bp in others
                       if any(d.get("target") == blueprint.identifier for d in getattr(bp, field).values())]
        if referencing:
            raise Conflict(f"Blueprint {blueprint.identifier!r} is the target of {what} in {referencing}; "
                           f"remove those {what} first.")
    initiatives = list(blueprint.initiatives.order_by("identifier").values_list("identifier", flat=True))
    if initiatives:
        raise Conflict(f"Blueprint {blueprint.identifier!r} has initiatives {initiatives} over its scorecards; "
                       f"delete them first.")
    events.run_checks(events.BLUEPRINT_DELETE, blueprint.identifier)
    count = Entity.objects.filter(blueprint=blueprint).count()
    if count and not delete_entities:
        raise Conflict(f"Blueprint {blueprint.identifier!r} still has {count} entities; delete them first or pass delete_entities=true.")
    before = blueprint_json(blueprint)
    if count:
        incoming = Relation.objects.filter(target__blueprint=blueprint).exclude(source__blueprint=blueprint).count()
        if incoming:
            raise Conflict(f"{incoming} relations from other blueprints point at entities of {blueprint.identifier!r}.")
        Entity.objects.filter(blueprint=blueprint).delete()
    from catalog.services.permissions import blueprint_permissions_clear

    blueprint_permissions_clear(blueprint)
    blueprint.delete()
    aggregated_by_rebuild()
    entity_indexes_follow(before["schema"], None)
    audit_record(actor=actor, verb=audit_choices.BLUEPRINT_DELETED, action=audit_choices.AuditAction.DELETE,
                 resource_type="blueprint", identifier=before["identifier"], blueprint=before["identifier"], before=before,
                 message=f"Deleted with {count} entities." if count else "")
