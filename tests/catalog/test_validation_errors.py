"""An entity write's errors carry their paths as data (what a form reads), and the API's message is their text,
as it always was; the admin forms place each error by its path, never by reading the text."""
import pytest
from django import forms

from catalog.forms import service_error_attach
from catalog.services.blueprints import blueprint_create
from catalog.services.entities import entity_write_one
from portal.actor import Actor
from portal.errors import Conflict, FieldError, NotFound, ValidationFailed

SYSTEM = Actor.system()
SERVICE = {
    "identifier": "Service", "title": "Service",
    "schema": {"properties": {"replicas": {"type": "number", "minimum": 1}, "language": {"type": "string", "enum": ["Go"]},
                              "tags": {"type": "array", "items": {"type": "string"}}}},
    "relations": {"domain": {"target": "Domain", "many": False}},
}


@pytest.fixture
def validated_service(db):
    blueprint_create(actor=SYSTEM, data={"identifier": "Domain", "title": "Domain", "schema": {"properties": {}}})
    return blueprint_create(actor=SYSTEM, data=SERVICE)


def refusal(blueprint, data, cls=ValidationFailed):
    with pytest.raises(cls) as caught:
        entity_write_one(actor=SYSTEM, blueprint=blueprint, data=data)
    return caught.value


def test_every_property_error_is_its_own_field_error(validated_service):
    exc = refusal(validated_service, {"identifier": "a", "properties": {"replicas": 0, "language": "Cobol", "tags": ["x", 3]}})
    assert [(e.path, e.parts) for e in exc.errors] == [
        ("properties.language", ("properties", "language")),
        ("properties.replicas", ("properties", "replicas")),
        ("properties.tags[1]", ("properties", "tags", 1)),
    ]
    assert exc.errors[1].message == "0 is less than the minimum of 1"
    assert exc.message == "; ".join(str(e) for e in exc.errors)
    assert exc.message.startswith("properties.language: 'Cobol' is not one of ['Go']; properties.replicas: ")


@pytest.mark.parametrize("data, path, message", [
    ({"identifier": "bad id!"}, "identifier", "'bad id!' is not a valid entity identifier"),
    ({"identifier": "a", "color": "red"}, "color", "is not an entity field"),
    ({"identifier": "a", "properties": []}, "properties", "must be an object"),
    ({"identifier": "a", "relations": {"nope": "x"}}, "relations.nope", "is not a relation of blueprint 'Service'"),
    ({"identifier": "a", "relations": {"domain": ["x", "y"]}}, "relations.domain",
     "relation is not 'many'; give one identifier, not 2"),
    ({"identifier": "a", "team": 5}, "team", "must be a team name or a list of team names"),
    ({"identifier": "a", "team": ["ghosts"]}, "team", "team 'ghosts' does not exist"),
    ({"identifier": "a", "blueprint": "Domain"}, "blueprint", "entity names blueprint 'Domain' but is sent to 'Service'"),
    ({"identifier": "a", "properties": {"tags": ["ok", "\x00"]}}, "properties.tags[1]", "must not contain NUL characters"),
])
def test_an_entity_write_names_the_path_at_fault_as_data(validated_service, data, path, message):
    exc = refusal(validated_service, data)
    assert len(exc.errors) == 1
    assert exc.path == path
    assert exc.errors[0].message.startswith(message)
    assert exc.message == f"{path}: {exc.errors[0].message}"


def test_a_missing_relation_target_is_not_found_at_its_relation(validated_service):
    exc = refusal(validated_service, {"identifier": "a", "relations": {"domain": "nowhere"}}, cls=NotFound)
    assert exc.path == "relations.domain"
    assert exc.errors[0].message.startswith("target entity 'nowhere' of blueprint 'Domain' does not exist")


def test_the_api_message_is_the_errors_text(validated_service, admin_api):
    response = admin_api.post("/v1/blueprints/Service/entities",
                              {"identifier": "a", "properties": {"replicas": 0, "language": "Cobol"}}, format="json")
    assert response.status_code == 422
    assert response.json()["message"] == ("properties.language: 'Cobol' is not one of ['Go']; "
                                          "properties.replicas: 0 is less than the minimum of 1")


class _Form(forms.Form):
    schema = forms.CharField(required=False)
    relations = forms.CharField(required=False)
    identifier = forms.CharField(required=False)


FIELD_BY_KEY = {"schema": "schema", "relations": "relations", "identifier": "identifier"}


def test_a_form_places_errors_by_their_paths_not_by_their_text():
    form = _Form(data={})
    assert form.is_valid()
    exc = ValidationFailed(errors=[
        FieldError("schema.properties.x.type", "is odd; relations.y: looks like a path but is text"),
        FieldError("relations.z[0]", "is missing"),
        FieldError("nowhere.q", "has no field"),
        FieldError("", "is wrong as a whole"),
    ])
    service_error_attach(form, exc, FIELD_BY_KEY)
    assert form.errors == {
        "schema": ["schema.properties.x.type: is odd; relations.y: looks like a path but is text"],
        "relations": ["relations.z[0]: is missing"],
        "__all__": ["nowhere.q: has no field", "is wrong as a whole"],
    }


def test_an_error_without_a_path_goes_to_the_default_field():
    form = _Form(data={})
    assert form.is_valid()
    service_error_attach(form, Conflict("Entity 'a' of blueprint 'Service' already exists."), FIELD_BY_KEY,
                         default="identifier")
    assert form.errors == {"identifier": ["Entity 'a' of blueprint 'Service' already exists."]}
