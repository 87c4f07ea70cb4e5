from django.db import connection
from django.db.models import Count

from catalog.access import readable_blueprint_ids
from catalog.models import Blueprint
from portal.errors import NotFound
from portal.kept import KeptValues
from portal.prepared_statements import execute_prepared, model_columns, model_from_row
from portal.datetimes import instant_text


def blueprint_get(identifier, *, for_update=False):
    """The blueprint `identifier` or NotFound; read (every API route of a blueprint does) through a statement prepared
    per connection, without building an ORM query, unless locked FOR UPDATE."""
    if for_update:
        blueprint = Blueprint.objects.select_for_update().filter(identifier=identifier).first()
        if blueprint is None:
            raise NotFound(f"Blueprint {identifier!r} was not found.")
        return blueprint
    return _blueprint_read(identifier)


# A blueprint row's version, taken in SQL: whatever changes it, by whatever writer, writes a new row version with
# another (xmin, ctid) — the transaction that wrote it and where — even one transaction writing it twice, or a writer
# that later rolls back (the row read after is the older version). A row only locked (FOR SHARE) keeps both. A table
# rewrite (VACUUM FULL) moves every row: read again once, as if changed. Cheaper than a digest of the whole row
# (md5 of its JSON: 0.4 ms for the four blueprints a deployment report locks).
DEFINITION_DIGEST = "({0}.xmin::text || ':' || {0}.ctid::text)"
_definitions = KeptValues(1024)  # identifier -> Blueprint as read, with its `definition_digest`


def blueprint_definition(identifier, *, fresh=False):
    """The blueprint `identifier` as this process last read it, or NotFound; read now when not kept or `fresh`.
    Only for a reader whose own statement then checks the row is unchanged (`definition_digest` against
    DEFINITION_DIGEST of the row by pk: catalog/selectors/search_pages.py) and reads again when it is not: the
    entity reads by identifier and search pages pay no statement for the definition. Shared between threads: not
    to be changed by the caller."""
    if not fresh:
        kept = blueprint_definition_kept(identifier)
        if kept is not None:
            return kept
    try:
        blueprint = _blueprint_read(identifier)
    except NotFound:
        _definitions.drop(identifier)
        raise
    _keep([blueprint])
    return blueprint


def blueprint_definition_kept(identifier):
    """The blueprint `identifier` as this process last read it, or None when it keeps none (nothing read)."""
    return _definitions.get(identifier)


def blueprint_definitions_fresh(identifiers):
    """{identifier: Blueprint} of those of `identifiers` that exist, read now in one statement and kept as
    `blueprint_definition` keeps what it reads."""
    found = _blueprints_read(identifiers)
    _keep(found.values())
    return found


def _keep(blueprints):
    _definitions.put_many((blueprint.identifier, blueprint) for blueprint in blueprints)


def _blueprint_read(identifier):
    """The blueprint row `identifier` as a Blueprint with its `definition_digest`, or NotFound: one prepared
    statement."""
    blueprint = _blueprints_read([identifier]).get(identifier)
    if blueprint is None:
        raise NotFound(f"Blueprint {identifier!r} was not found.")
    return blueprint


def _blueprints_read(identifiers):
    """{identifier: Blueprint with its `definition_digest`} of the rows of `identifiers`: one prepared statement."""
    columns, _, _ = model_columns(Blueprint, "b")
    with connection.cursor() as cursor:
        execute_prepared(cursor, "blueprints_read", f"SELECT {columns}, {DEFINITION_DIGEST.format('b')} "
                                                    f"FROM catalog_blueprint b WHERE b.identifier = ANY(%s::text[])",
                         [sorted(set(identifiers))])
        rows = cursor.fetchall()
    found = {}
    for row in rows:
        blueprint = model_from_row(Blueprint, "b", row[:-1])
        blueprint.definition_digest = row[-1]
        found[blueprint.identifier] = blueprint
    return found


def blueprints_visible_to(user):
    """Blueprints with entities the user may read (all of their entities, or those their teams own), by title."""
    full, owned = readable_blueprint_ids(user)
    queryset = Blueprint.objects.all() if full is None else Blueprint.objects.filter(id__in=set(full) | set(owned))
    return queryset.order_by("title", "identifier")


def blueprint_visible_to(user, identifier):
    """The blueprint `identifier` if the user may read entities of it, else None."""
    return blueprints_visible_to(user).filter(identifier=identifier).first()


def entity_counts_visible_to(user):
    """{blueprint id: how many of its entities the user may read}, in one query."""
    from catalog.selectors.entities import entities_visible_to

    return dict(entities_visible_to(user).order_by().values_list("blueprint_id").annotate(n=Count("id")))


def blueprints_by_identifier():
    """{identifier: Blueprint} of every blueprint with only what the columns of another blueprint's relations and
    mirror properties need (schema, relations). Every signed-in user may read definitions (GET /v1/blueprints)."""
    return {b.identifier: b for b in Blueprint.objects.only("identifier", "schema", "relations")}


def blueprints_exist():
    return Blueprint.objects.exists()


def blueprint_definitions(*, exclude=None):
    """{identifier: clean definition} of every blueprint, as blueprint validation needs them."""
    return {bp.identifier: blueprint_json(bp) for bp in Blueprint.objects.exclude(identifier=exclude)}


def blueprint_json(blueprint):
    return {
        "identifier": blueprint.identifier,
        "title": blueprint.title,
        "icon": blueprint.icon,
        "description": blueprint.description,
        "schema": blueprint.schema,
        "relations": blueprint.relations,
        "mirrorProperties": blueprint.mirror_properties,
        "calculationProperties": blueprint.calculation_properties,
        "aggregationProperties": blueprint.aggregation_properties,
        "formulaProperties": blueprint.formula_properties,
        "ownership": blueprint.ownership,
        "changelogDestination": blueprint.changelog_destination,
        "createdBy": blueprint.created_by,
        "updatedBy": blueprint.updated_by,
        "createdAt": instant_text(blueprint.created_at),
        "updatedAt": instant_text(blueprint.updated_at),
    }


DEFINITION_FIELDS = {
    "title": "title",
    "icon": "icon",
    "description": "description",
    "schema": "schema",
    "relations": "relations",
    "mirrorProperties": "mirror_properties",
    "calculationProperties": "calculation_properties",
    "aggregationProperties": "aggregation_properties",
    "formulaProperties": "formula_properties",
    "ownership": "ownership",
    "changelogDestination": "changelog_destination",
}
