"""catalog/shapes.py and catalog/schemas/blueprint.json: a blueprint definition's shape is checked against a
JSON Schema document, its errors named by path as data; odd and hostile documents get a 422 naming the path,
never a 500 or a RecursionError."""
import json

import pytest
from jsonschema import Draft202012Validator

from catalog import choices
from catalog.definitions import blueprint_definition_clean
from catalog.models import Blueprint
from catalog.property_definitions import MAX_DEPTH
from catalog.shapes import schema_validator
from portal.errors import FieldError, ValidationFailed

SCHEMA = schema_validator("catalog", "blueprint").schema
THING = {"identifier": "Thing", "title": "Thing", "schema": {"properties": {"name": {"type": "string"}}}}


def clean(**changes):
    return blueprint_definition_clean({**THING, **changes}, blueprints={})


def refused(**changes):
    with pytest.raises(ValidationFailed) as caught:
        clean(**changes)
    assert len(caught.value.errors) == 1
    return caught.value.errors[0]


def test_the_schema_is_a_valid_2020_12_schema():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMA)


def test_the_schema_names_the_choices_and_column_lengths_the_code_uses():
    defs = SCHEMA["$defs"]
    assert defs["propertyType"]["enum"] == list(choices.PROPERTY_TYPES)
    assert defs["format"]["enum"] == list(choices.STRING_FORMATS)
    assert defs["spec"]["enum"] == list(choices.SPEC_KINDS)
    assert defs["ownership"]["properties"]["type"]["enum"] == list(choices.OWNERSHIP_TYPES)
    assert defs["calculationSpec"]["properties"]["func"]["enum"] == list(choices.AGGREGATION_FUNCTIONS)
    assert defs["key"]["maxLength"] == choices.KEY_MAX
    for field in ("title", "icon"):
        assert SCHEMA["properties"][field]["maxLength"] == Blueprint._meta.get_field(field).max_length


def test_a_shape_error_is_data_with_the_path_outside_the_message():
    error = refused(schema={"properties": {"replicas": {"type": "strin"}}})
    assert error == FieldError("schema.properties.replicas.type",
                               "must be one of ['string', 'number', 'boolean', 'object', 'array'], got 'strin'")


@pytest.mark.parametrize("changes, expected", [
    ({"title": "   "}, FieldError("title", "is required")),
    ({"title": "x" * 201}, FieldError("title", "must be at most 200 characters")),
    ({"schema": {"properties": {"x": {"type": "string", "colour": "red", "tint": 1}}}},
     FieldError("schema.properties.x", "unknown keys ['colour', 'tint']")),
    ({"schema": {"properties": {"x": {"type": "number", "minLength": 1}}}},
     FieldError("schema.properties.x.minLength", "applies to string properties only")),
    ({"schema": {"properties": {"x": {"type": "number", "format": "url"}}}},
     FieldError("schema.properties.x.format", "format 'url' applies to string properties only")),
    ({"schema": {"properties": {"x": {"type": "string", "minLength": -1}}}},
     FieldError("schema.properties.x.minLength", "must be a non-negative integer")),
    ({"schema": {"properties": {"x": {"type": "number", "enum": [1, "two"]}}}},
     FieldError("schema.properties.x.enum[1]", "'two' is not of type number")),
    ({"schema": {"properties": {"x": {"type": "array", "items": [{"type": "string"}]}}}},
     FieldError("schema.properties.x.items", "must be a property definition (an object), got array")),
    ({"schema": {"properties": {"bad key": {"type": "string"}}}},
     FieldError("schema.properties.bad key", "'bad key' is not a valid key (A-Z a-z 0-9 @ _ = - only, at most 100).")),
    ({"relations": {"service": {"title": "Service"}}},
     FieldError("relations.service.target", "must be a blueprint identifier, got null")),
    ({"mirrorProperties": {"m": {}}},
     FieldError("mirrorProperties.m.path", "is required: relation ids joined by dots, ending in a property or meta-property")),
    ({"ownership": {"type": "Direct", "path": "service"}}, FieldError("ownership.path", "applies to Inherited ownership only")),
])
def test_shape_errors_name_the_path_and_keep_todays_wording(changes, expected):
    assert refused(**changes) == expected


def test_shape_errors_come_before_meaning_errors():
    """The relation's target does not exist (meaning) and its title is no string (shape): the shape is named."""
    error = refused(relations={"service": {"target": "Nowhere", "title": 5}})
    assert error == FieldError("relations.service.title", "must be a string, got number")
    assert refused(relations={"service": {"target": "Nowhere"}}) == \
        FieldError("relations.service.target", "blueprint 'Nowhere' does not exist")


def test_of_two_shape_errors_the_first_in_the_document_is_named():
    first = {"b": {"type": "string", "title": 5}, "a": {"type": "nope"}}
    assert refused(schema={"properties": first}).path == "schema.properties.b.title"
    second = {"a": {"type": "nope"}, "b": {"type": "string", "title": 5}}
    assert refused(schema={"properties": second}).path == "schema.properties.a.type"


def test_a_missing_key_is_named_after_the_errors_of_the_keys_present():
    spec = {"calculationBy": "property", "func": "count"}  # count is not a function by property; `property` missing
    aggregation = {"a": {"title": "A", "target": "Thing", "calculationSpec": spec}}
    assert refused(aggregationProperties=aggregation).path == "aggregationProperties.a.calculationSpec.func"


def test_a_nested_timer_is_refused_and_a_top_level_one_kept():
    assert clean(schema={"properties": {"ends": {"type": "string", "format": "timer"}}})["schema"]["properties"]
    nested = {"type": "object", "properties": {"ends": {"type": "string", "format": "timer"}}}
    assert refused(schema={"properties": {"x": nested}}).path == "schema.properties.x.properties.ends.format"


def test_definitions_nested_deeper_than_the_limit_are_refused_at_the_first_level_too_deep():
    definition = {"type": "string"}
    for _ in range(MAX_DEPTH + 1):
        definition = {"type": "array", "items": definition}
    assert refused(schema={"properties": {"x": definition}}).path == "schema.properties.x" + ".items" * (MAX_DEPTH + 1)


def test_ten_thousand_levels_of_nesting_are_refused_naming_the_path():
    deep = "leaf"
    for _ in range(10_000):
        deep = [deep]
    error = refused(schema={"properties": {"x": {"type": "array", "default": deep}}})
    assert error.path.startswith("schema.properties.x.default[0][0]")
    assert "nested deeper" in error.message
    nested = {"type": "string"}
    for _ in range(10_000):
        nested = {"type": "object", "properties": {"n": nested}}
    assert refused(schema={"properties": {"x": nested}}).path.startswith("schema.properties.x.properties.n.properties")


@pytest.mark.parametrize("changes, path", [
    ({"description": "a\x00b"}, "description"),
    ({"schema": {"properties": {"x": {"type": "number", "maximum": float("nan")}}}}, "schema.properties.x.maximum"),
    ({"schema": {"properties": {"x": {"type": "number", "minimum": float("-inf")}}}}, "schema.properties.x.minimum"),
    ({"schema": {"properties": {"x\x00": {"type": "string"}}}}, "schema.properties"),
    ({"relations": {"service": {"target": "\ud800"}}}, "relations.service.target"),
])
def test_values_postgresql_cannot_store_are_refused_naming_the_path(changes, path):
    assert refused(**changes).path == path


def test_huge_numbers_are_kept_or_refused_by_meaning_never_a_crash():
    huge = 10 ** 400
    kept = clean(schema={"properties": {"x": {"type": "number", "maximum": huge, "default": huge - 1}}})
    assert kept["schema"]["properties"]["x"]["maximum"] == huge
    assert refused(schema={"properties": {"x": {"type": "number", "minimum": huge, "maximum": 1}}}).path == \
        "schema.properties.x.minimum"
    assert refused(schema={"properties": {"x": {"type": "string", "minLength": huge, "maxLength": 1}}}).path == \
        "schema.properties.x.minLength"


@pytest.mark.django_db
@pytest.mark.parametrize("body, status, message", [
    (json.dumps({**THING, "title": "a\u0000b"}), 422, "title: "),
    (json.dumps({**THING, "schema": {"properties": {"x": {"type": "number", "maximum": 1}}}}).replace(": 1}", ": 1e400}"),
     422, "schema.properties.x.maximum: "),
    # more digits than Python turns into an int: not JSON the portal reads
    ('{"identifier": "Thing", "title": "Thing", "schema": {"properties": {"x": {"type": "number", "default": '
     + "9" * 5000 + "}}}}", 400, "Malformed JSON"),
    (json.dumps({**THING, "schema": {"properties": {"x": {"type": "array", "default": "DEEP"}}}})
     .replace('"DEEP"', "[" * 10_000 + "]" * 10_000), 422, "JSON body is nested deeper"),
])
def test_odd_bodies_through_the_api_are_refused_never_a_500(admin_api, body, status, message):
    response = admin_api.post("/v1/blueprints", body, content_type="application/json")
    assert response.status_code == status, response.content
    assert response.json()["message"].startswith(message), response.json()
    assert not Blueprint.objects.filter(identifier="Thing").exists()


@pytest.mark.django_db
def test_a_huge_number_within_what_json_and_postgresql_hold_is_stored(admin_api):
    body = json.dumps({**THING, "schema": {"properties": {"x": {"type": "number", "maximum": 10 ** 300}}}})
    response = admin_api.post("/v1/blueprints", body, content_type="application/json")
    assert response.status_code == 201, response.json()
    assert Blueprint.objects.get(identifier="Thing").schema["properties"]["x"]["maximum"] == 10 ** 300
