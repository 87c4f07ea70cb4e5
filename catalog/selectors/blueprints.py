from catalog.models import Blueprint
from portal.errors import NotFound
from portal.datetimes import instant_text


def blueprint_get(identifier, *, for_update=False):
    queryset = Blueprint.objects.select_for_update() if for_update else Blueprint.objects
    blueprint = queryset.filter(identifier=identifier).first()
    if blueprint is None:
        raise NotFound(f"Blueprint {identifier!r} was not found.")
    return blueprint


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
