"""catalog/definitions.py and catalog/property_definitions.py: a blueprint definition is validated all the way
down (nested object properties, array items, relations, mirror, calculation and aggregation properties), a
definition no entity could satisfy is refused when it is saved, and every error names the JSON path at fault —
through POST and PUT /v1/blueprints alike."""
import copy
import json

import pytest

from audit.models import AuditEvent
from catalog.models import Blueprint, Entity, Team
from tests.support.admin import blueprint_form, form_errors, url

pytestmark = pytest.mark.django_db

SERVICE = {"identifier": "Service", "title": "Service",
           "schema": {"properties": {"language": {"type": "string"}, "stars": {"type": "number"},
                                     "released": {"type": "string", "format": "date-time"}}}}
TEAM = {"identifier": "Squad", "title": "Squad", "schema": {"properties": {}}}
THING = {"identifier": "Thing", "title": "Thing", "schema": {"properties": {"name": {"type": "string"}}},
         "relations": {"service": {"target": "Service"}}}


def prop(definition, key="x"):
    return {"schema": {"properties": {key: definition}}}


def config(**nested):
    """A `config` object property whose nested `port` is defined by `nested`."""
    return prop({"type": "object", "properties": {"port": {"type": "number", **nested}}}, "config")


def aggregation(**overrides):
    agg = {"title": "Stars", "type": "number", "target": "Service",
           "calculationSpec": {"calculationBy": "property", "func": "sum", "property": "stars"}}
    agg.update(overrides)
    return {"aggregationProperties": {"a": agg}}


def spec(**overrides):
    return aggregation(calculationSpec={"calculationBy": "property", "func": "sum", "property": "stars", **overrides})


def deep(levels):
    definition = {"type": "string"}
    for _ in range(levels):
        definition = {"type": "object", "properties": {"n": definition}}
    return definition


BAD = [
    # nested object properties: validated with the same rules, keys checked, `required` naming nested keys
    (config(type="strin"), "schema.properties.config.properties.port.type"),
    (config(colour="red"), "schema.properties.config.properties.port"),
    (config(enum=[1, "two"]), "schema.properties.config.properties.port.enum[1]"),
    (config(default="80"), "schema.properties.config.properties.port.default"),
    (config(minimum=10, exclusiveMaximum=10), "schema.properties.config.properties.port.minimum"),
    (prop({"type": "object", "properties": {"p\n": {"type": "string"}}}, "config"), "schema.properties.config.properties.p\n"),
    (prop({"type": "object", "properties": {"bad key": {"type": "string"}}}, "config"),
     "schema.properties.config.properties.bad key"),
    (prop({"type": "object", "properties": []}, "config"), "schema.properties.config.properties"),
    (prop({"type": "object", "properties": {"port": {"type": "number"}}, "required": ["host"]}, "config"),
     "schema.properties.config.required[0]"),
    (prop({"type": "object", "properties": {"port": {"type": "number"}}, "required": "port"}, "config"),
     "schema.properties.config.required"),
    (prop({"type": "object", "additionalProperties": "yes"}, "config"), "schema.properties.config.additionalProperties"),
    (prop({"type": "object", "additionalProperties": {"type": "nope"}}, "config"),
     "schema.properties.config.additionalProperties.type"),
    (prop({"type": "string", "properties": {}}), "schema.properties.x.properties"),
    (prop(deep(10)), "schema.properties.x" + ".properties.n" * 9),
    # a required nested key whose definition nothing satisfies
    (prop({"type": "object", "required": ["port"], "properties": {"port": {"type": "string", "minLength": 5, "maxLength": 2}}},
          "config"), "schema.properties.config.properties.port.minLength"),
    (prop({"type": "object", "properties": {"port": {"type": "number"}}, "required": ["port"], "default": {}}, "config"),
     "schema.properties.config.default.port"),
    # array items: an object with a type, validated recursively
    (prop({"type": "array", "items": {"title": "Tag"}}, "tags"), "schema.properties.tags.items.type"),
    (prop({"type": "array", "items": {"type": "string", "minLength": 3, "maxLength": 1}}, "tags"),
     "schema.properties.tags.items.minLength"),
    (prop({"type": "array", "items": {"type": "object", "properties": {"a": {"type": "number", "enum": ["a"]}}}}, "tags"),
     "schema.properties.tags.items.properties.a.enum[0]"),
    (prop({"type": "array", "items": {"type": "string", "pattern": "\\pL"}}, "tags"), "schema.properties.tags.items.pattern"),
    (prop({"type": "array", "items": {"type": "string", "title": 5}}, "tags"), "schema.properties.tags.items.title"),
    (prop({"type": "array", "items": {"type": "string", "format": "timer"}}, "tags"), "schema.properties.tags.items.format"),
    (prop({"type": "array", "items": {"type": "object", "properties": {"a": {"type": 5}}}}, "tags"),
     "schema.properties.tags.items.properties.a.type"),
    (prop({"type": "array", "items": {"type": "boolean"}, "uniqueItems": True, "minItems": 3}, "tags"),
     "schema.properties.tags.minItems"),
    (prop({"type": "string", "items": {"type": "string"}}), "schema.properties.x.items"),
    # every value of the right JSON type, bounds that leave a value, keys of the property's type
    (prop({"type": "string", "title": 5}), "schema.properties.x.title"),
    (prop({"type": "string", "description": ["d"]}), "schema.properties.x.description"),
    (prop({"type": "string", "icon": {}}), "schema.properties.x.icon"),
    (prop({"type": "string", "minLength": 3, "maxLength": 2}), "schema.properties.x.minLength"),
    (prop({"type": "array", "minItems": 3, "maxItems": 2}), "schema.properties.x.minItems"),
    (prop({"type": "number", "exclusiveMinimum": 1, "maximum": 1}), "schema.properties.x.exclusiveMinimum"),
    (prop({"type": "number", "maxLength": 2}), "schema.properties.x.maxLength"),
    (prop({"type": "array", "uniqueItems": "yes"}), "schema.properties.x.uniqueItems"),
    (prop({"type": "string", "pattern": "\\pL"}), "schema.properties.x.pattern"),  # RE2 yes, JSON Schema regex no
    (prop({"type": "string", "enum": [None]}), "schema.properties.x.enum"),
    (prop({"type": "string", "enum": ["ok", "NOT"], "pattern": "^[a-z]+$"}), "schema.properties.x.enum[1]"),
    (prop({"type": "string", "enum": ["a@example.com", "nobody"], "format": "email"}), "schema.properties.x.enum[1]"),
    (prop({"type": "string", "const": 5}), "schema.properties.x.const"),
    (prop({"type": "string", "format": "url", "default": "http://["}), "schema.properties.x.default"),  # urlsplit raises
    (prop({"type": "object", "format": "labeled-url", "enum": [{}]}, "link"), "schema.properties.link.enum"),
    ({"schema": {"type": "array", "properties": {}}}, "schema.type"),
    ({"schema": {"properties": {"p\n": {"type": "string"}}}}, "schema.properties.p\n"),
    ({"icon": []}, "icon"),
    ({"changelogDestination": "kafka"}, "changelogDestination"),
    # relations, mirror and calculation properties
    ({"relations": {"service": {"target": "Service", "title": 5}}}, "relations.service.title"),
    ({"relations": {"service\n": {"target": "Service"}}}, "relations.service\n"),
    ({"mirrorProperties": {"m": {"path": "service.language", "title": 5}}}, "mirrorProperties.m.title"),
    ({"mirrorProperties": {"m": {"path": "service.language", "colour": "red"}}}, "mirrorProperties.m"),
    ({"mirrorProperties": {"m\n": {"path": "service.language"}}}, "mirrorProperties.m\n"),
    ({"calculationProperties": {"c": {"calculation": ".title", "type": "string", "format": "colour"}}},
     "calculationProperties.c.format"),
    ({"calculationProperties": {"c": {"calculation": ".title", "type": "number", "format": "url"}}},
     "calculationProperties.c.format"),
    ({"calculationProperties": {"c": {"calculation": ".title", "colorized": "yes"}}}, "calculationProperties.c.colorized"),
    ({"calculationProperties": {"c": {"calculation": ".title", "title": ["t"]}}}, "calculationProperties.c.title"),
    # aggregation properties (Port's shape): a related target, a number property of it, a valid query
    (aggregation(target="Squad"), "aggregationProperties.a.target"),
    (aggregation(type="string"), "aggregationProperties.a.type"),
    (aggregation(calculationSpec=None), "aggregationProperties.a.calculationSpec"),
    (aggregation(calculationSpec={"func": "sum", "property": "stars"}), "aggregationProperties.a.calculationSpec.calculationBy"),
    (aggregation(calculationSpec={"calculationBy": "property", "func": "count"}), "aggregationProperties.a.calculationSpec.func"),
    (aggregation(calculationSpec={"calculationBy": "entities", "func": "count", "property": "stars"}),
     "aggregationProperties.a.calculationSpec.property"),
    (spec(property="language"), "aggregationProperties.a.calculationSpec.property"),
    (spec(property="missing"), "aggregationProperties.a.calculationSpec.property"),
    (spec(func="average", averageOf="year"), "aggregationProperties.a.calculationSpec.averageOf"),
    (spec(func="average", averageOf="day", measureTimeBy="language"), "aggregationProperties.a.calculationSpec.measureTimeBy"),
    (spec(measureTimeBy="$createdAt"), "aggregationProperties.a.calculationSpec.measureTimeBy"),
    (spec(colour="red"), "aggregationProperties.a.calculationSpec"),
    (aggregation(query={"combinator": "and", "rules": [{"property": "nope", "operator": "=", "value": 1}]}),
     "aggregationProperties.a.query.rules[0].property"),
    (aggregation(query={"combinator": "xor", "rules": []}), "aggregationProperties.a.query.combinator"),
    (aggregation(pathFilter=[{"path": ["nope"]}]), "aggregationProperties.a.pathFilter[0].path"),
    (aggregation(pathFilter=[{"path": ["service"], "fromBlueprint": "Squad"}]),
     "aggregationProperties.a.pathFilter[0].fromBlueprint"),
    (aggregation(title=7), "aggregationProperties.a.title"),
    # ownership follows relations hop by hop
    ({"ownership": {"type": "Inherited", "path": "service.nope"}}, "ownership.path"),
]


@pytest.fixture
def catalog_api(admin_api):
    for definition in (SERVICE, TEAM):
        assert admin_api.post("/v1/blueprints", definition, format="json").status_code == 201
    return admin_api


def refused(response, path):
    assert response.status_code == 422, response.json()
    body = response.json()
    assert body["ok"] is False and body["error"] == "invalid_request"
    assert body["message"].startswith(f"{path}: "), body["message"]


@pytest.mark.parametrize("change, path", BAD)
def test_create_refuses_a_bad_definition_naming_the_path(catalog_api, change, path):
    refused(catalog_api.post("/v1/blueprints", {**copy.deepcopy(THING), **change}, format="json"), path)
    assert not Blueprint.objects.filter(identifier="Thing").exists()
    assert not AuditEvent.objects.filter(resource_type="blueprint", identifier="Thing").exists()


@pytest.mark.parametrize("change, path", BAD)
def test_replace_refuses_a_bad_definition_naming_the_path(catalog_api, change, path):
    assert catalog_api.post("/v1/blueprints", THING, format="json").status_code == 201
    refused(catalog_api.put("/v1/blueprints/Thing", {**copy.deepcopy(THING), **change}, format="json"), path)
    assert Blueprint.objects.get(identifier="Thing").version == 1


def test_values_jsonb_cannot_store_are_refused_naming_the_path(catalog_api):
    """1e400 parses as infinity and a NUL character is valid JSON text; PostgreSQL stores neither."""
    body = json.dumps({**THING, "schema": {"properties": {"x": {"type": "number", "maximum": 0}}}})
    infinite = catalog_api.post("/v1/blueprints", body.replace('"maximum": 0', '"maximum": 1e400'), content_type="application/json")
    refused(infinite, "schema.properties.x.maximum")
    nul = catalog_api.post("/v1/blueprints", {**THING, "schema": {"properties": {"x": {"type": "string", "title": "a\x00b"}}}},
                       format="json")
    refused(nul, "schema.properties.x.title")
    assert not Blueprint.objects.filter(identifier="Thing").exists()


NESTED = {
    "identifier": "Host", "title": "Host",
    "schema": {"properties": {
        "config": {"type": "object", "title": "Config", "additionalProperties": False, "required": ["port"],
                   "properties": {"port": {"type": "number", "title": "Port", "minimum": 1},
                                  "address": {"type": "string", "format": "ipv4", "icon": "Network"},
                                  "site": {"type": "string", "format": "url"},
                                  "link": {"type": "string", "format": "labeled-url", "title": "Link"},
                                  "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$",
                                                                      "description": "lower case"}},
                                  "limits": {"type": "object", "properties": {"cpu": {"type": "number", "maximum": 8}},
                                             "required": ["cpu"]}}},
    }},
}


def write(api, properties, identifier="web"):
    return api.post("/v1/blueprints/Host/entities", {"identifier": identifier, "properties": properties}, format="json")


@pytest.mark.parametrize("value, path", [
    ({"address": "10.0.0.1"}, "properties.config.port"),
    ({"port": 0}, "properties.config.port"),
    ({"port": 80, "address": "10.0.0.256"}, "properties.config.address"),
    ({"port": 80, "site": "http://["}, "properties.config.site"),
    ({"port": 80, "tags": ["ok", "Not"]}, "properties.config.tags[1]"),
    ({"port": 80, "limits": {}}, "properties.config.limits.cpu"),
    ({"port": 80, "limits": {"cpu": 9}}, "properties.config.limits.cpu"),
    ({"port": 80, "colour": "red"}, "properties.config"),
])
def test_a_nested_definition_validates_entity_writes_at_every_level(admin_api, value, path):
    assert admin_api.post("/v1/blueprints", NESTED, format="json").status_code == 201
    refused(write(admin_api, {"config": value}), path)
    good = {"port": 80, "address": "10.0.0.1", "tags": ["web"], "limits": {"cpu": 2},
            "link": {"url": "https://example.com", "displayText": "Example"}}
    created = write(admin_api, {"config": good})
    assert created.status_code == 201, created.json()
    assert created.json()["entity"]["properties"]["config"] == good


def test_a_nested_change_existing_entities_would_fail_is_refused_with_a_count(admin_api):
    assert admin_api.post("/v1/blueprints", NESTED, format="json").status_code == 201
    assert write(admin_api, {"config": {"port": 80, "link": {"url": "https://example.com"}}}).status_code == 201
    assert write(admin_api, {"config": {"port": 81}}, identifier="api").status_code == 201
    stricter = copy.deepcopy(NESTED)
    stricter["schema"]["properties"]["config"]["required"] = ["port", "address"]
    response = admin_api.put("/v1/blueprints/Host", stricter, format="json")
    refused(response, "schema.properties.config")
    assert "2 entities would become invalid" in response.json()["message"]
    retitled = copy.deepcopy(NESTED)  # presentation keys at any depth change no entity's validity
    retitled["schema"]["properties"]["config"]["properties"]["port"]["title"] = "TCP port"
    assert admin_api.put("/v1/blueprints/Host", retitled, format="json").status_code == 200
    assert Entity.objects.filter(blueprint__identifier="Host").count() == 2


def test_a_good_aggregation_is_kept_and_its_target_cannot_be_deleted_under_it(catalog_api):
    aggregations = {
        "total": {"title": "Stars", "type": "number", "target": "Service",
                  "calculationSpec": {"calculationBy": "property", "func": "sum", "property": "stars"},
                  "query": {"combinator": "and", "rules": [{"property": "language", "operator": "=", "value": "Go"}]},
                  "pathFilter": [{"path": ["service"]}]},
        "perWeek": {"title": "Services per week", "target": "Service",
                    "calculationSpec": {"calculationBy": "entities", "func": "average", "averageOf": "week",
                                        "measureTimeBy": "released"}},
    }
    created = catalog_api.post("/v1/blueprints", {**THING, "aggregationProperties": aggregations}, format="json")
    assert created.status_code == 201, created.json()
    assert Blueprint.objects.get(identifier="Thing").aggregation_properties == aggregations
    # Downstream too: Service aggregates the Things that relate to it.
    downstream = {"things": {"title": "Things", "target": "Thing", "calculationSpec": {"calculationBy": "entities", "func": "count"},
                             "pathFilter": [{"path": ["service"], "fromBlueprint": "Thing"}]}}
    patched = catalog_api.patch("/v1/blueprints/Service", {"aggregationProperties": downstream}, format="json")
    assert patched.status_code == 200, patched.json()
    # Removing the number property the aggregation reads breaks Thing: refused, naming it.
    schema = {"properties": {"language": {"type": "string"}, "released": {"type": "string", "format": "date-time"}}}
    response = catalog_api.patch("/v1/blueprints/Service", {"schema": schema}, format="json")
    assert response.status_code == 422
    assert "Blueprint 'Thing' would break: aggregationProperties.total.calculationSpec.property" in response.json()["message"]
    assert catalog_api.patch("/v1/blueprints/Service", {"aggregationProperties": {}}, format="json").status_code == 200
    assert catalog_api.put("/v1/blueprints/Thing", {**THING, "relations": {}, "aggregationProperties": aggregations},
                       format="json").status_code == 422  # no relation left between Thing and Service
    assert catalog_api.put("/v1/blueprints/Thing", {**THING, "relations": {}}, format="json").status_code == 200


def test_deleting_the_target_of_an_aggregation_is_refused(catalog_api):
    """Service -> Squad: Squad aggregates the Services that relate to it; Service cannot go first."""
    assert catalog_api.patch("/v1/blueprints/Service", {"relations": {"squad": {"target": "Squad"}}}, format="json").status_code == 200
    counted = {"services": {"title": "Services", "target": "Service", "calculationSpec": {"calculationBy": "entities", "func": "count"}}}
    assert catalog_api.patch("/v1/blueprints/Squad", {"aggregationProperties": counted}, format="json").status_code == 200
    response = catalog_api.delete("/v1/blueprints/Service")
    assert response.status_code == 409
    assert response.json()["message"] == ("Blueprint 'Service' is the target of aggregation properties in ['Squad']; "
                                          "remove those aggregation properties first.")
    assert Blueprint.objects.filter(identifier="Service").exists()


def test_import_applies_mirrors_that_follow_relations_of_later_blueprints(system):
    """A mirrors b.c.name: B's relation to C is set in the import's second pass, A's mirror in the third."""
    from catalog.services.catalog_import import catalog_import

    document = {"blueprints": [
        {"identifier": "A", "title": "A", "schema": {"properties": {}}, "relations": {"b": {"target": "B"}},
         "mirrorProperties": {"cName": {"path": "b.c.name"}}},
        {"identifier": "B", "title": "B", "schema": {"properties": {}}, "relations": {"c": {"target": "C"}}},
        {"identifier": "C", "title": "C", "schema": {"properties": {"name": {"type": "string"}}}},
    ]}
    catalog_import(actor=system, document=document)
    assert Blueprint.objects.get(identifier="A").mirror_properties == {"cName": {"path": "b.c.name"}}


@pytest.mark.parametrize("field, value, path", [
    ("schema", config(type="strin")["schema"], "schema.properties.config.properties.port.type"),
    ("schema", '{"properties": {"x": {"type": "number", "maximum": NaN}}}', "schema.properties.x.maximum"),
    ("aggregation_properties", aggregation(target="Squad")["aggregationProperties"], "aggregationProperties.a.target"),
    ("ownership", {"type": "Inherited", "path": "service.nope"}, "ownership.path"),
])
def test_the_admin_form_shows_the_error_at_the_field(staff, catalog_api, field, value, path):
    """Django's JSON form field parses NaN; the admin saves through the same service as the API."""
    form = blueprint_form(**{"identifier": "Thing", "title": "Thing", "schema": THING["schema"],
                             "relations": THING["relations"], field: value})
    errors = form_errors(staff.post(url(Blueprint, "add"), form))
    assert list(errors) == [field], errors
    assert errors[field][0].startswith(f"{path}: "), errors
    assert not Blueprint.objects.filter(identifier="Thing").exists()


def test_date_times_under_additional_properties_are_validated_and_stored_in_utc(admin_api):
    schedule = {"identifier": "Schedule", "title": "Schedule", "schema": {"properties": {
        "windows": {"type": "object", "additionalProperties": {"type": "string", "format": "date-time"}}}}}
    assert admin_api.post("/v1/blueprints", schedule, format="json").status_code == 201
    refused(admin_api.post("/v1/blueprints/Schedule/entities", {"identifier": "s", "properties": {"windows": {"freeze": "soon"}}},
                           format="json"), "properties.windows.freeze")
    created = admin_api.post("/v1/blueprints/Schedule/entities",
                             {"identifier": "s", "properties": {"windows": {"freeze": "2030-01-01T02:00:00+02:00"}}}, format="json")
    assert created.status_code == 201, created.json()
    assert Entity.objects.get(identifier="s").properties == {"windows": {"freeze": "2030-01-01T00:00:00.000Z"}}


@pytest.mark.parametrize("name", ["platform\n", " platform", "plat\tform", "plat\x00form"])
def test_a_team_name_with_control_characters_or_surrounding_spaces_is_refused(admin_api, name):
    """A trailing newline made a second "platform" that looks the same in every list."""
    refused(admin_api.post("/v1/teams", {"name": name}, format="json"), "name")
    assert not Team.objects.exists()
