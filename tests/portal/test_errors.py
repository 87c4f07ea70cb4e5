"""Errors carry their place as data: FieldError(path, message), the errors of a PortalError, the DRF details and
strictjson's problems turned into FieldErrors, and the API envelope whose message is their text."""
import pytest
from rest_framework import exceptions as drf

from portal import strictjson
from portal.api.errors import exception_handler, validation_detail_errors
from portal.errors import Conflict, FieldError, NotFound, PortalError, ValidationFailed


@pytest.mark.parametrize("path, text", [
    ("properties.replicas", "properties.replicas: 0 is less than the minimum of 1"),
    ("", "0 is less than the minimum of 1"),
])
def test_a_field_error_reads_as_path_then_message(path, text):
    assert str(FieldError(path, "0 is less than the minimum of 1")) == text


@pytest.mark.parametrize("path, parts", [
    ("", ()),
    ("identifier", ("identifier",)),
    ("properties.tags[1]", ("properties", "tags", 1)),
    ("rules[0].rules[12].value", ("rules", 0, "rules", 12, "value")),
    ("schema.properties.$title", ("schema", "properties", "$title")),
    ("relations.owner@team=x-y", ("relations", "owner@team=x-y")),
    ("[3].name", (3, "name")),
])
def test_parts_split_a_path_into_keys_and_indexes(path, parts):
    assert FieldError(path, "m").parts == parts


@pytest.mark.parametrize("prefix, path, joined", [
    ("trigger.userInputs", "properties.x", "trigger.userInputs.properties.x"),
    ("items", "[2]", "items[2]"),
    ("items", "[2].name", "items[2].name"),
    ("properties.x", "", "properties.x"),
    ("", "properties.x", "properties.x"),
])
def test_within_puts_the_error_inside_an_enclosing_document(prefix, path, joined):
    assert FieldError(path, "bad").within(prefix) == FieldError(joined, "bad")


def test_one_error_with_its_path_is_the_message_the_api_always_gave():
    exc = ValidationFailed("is required", path="identifier")
    assert exc.errors == (FieldError("identifier", "is required"),)
    assert exc.path == "identifier"
    assert exc.message == str(exc) == "identifier: is required"
    assert (exc.status, exc.code) == (422, "invalid_request")


def test_several_errors_are_joined_in_their_order():
    exc = ValidationFailed(errors=[FieldError("properties.a", "is bad"), FieldError("", "so is the whole"),
                                   FieldError("properties.b[0]", "too")])
    assert exc.message == "properties.a: is bad; so is the whole; properties.b[0]: too"
    assert exc.path == "properties.a"
    assert [e.parts for e in exc.errors] == [("properties", "a"), (), ("properties", "b", 0)]


def test_a_field_error_may_stand_for_the_message_and_path_holds_it():
    exc = ValidationFailed(FieldError("[0]", "is not an integer"), path="trigger.default")
    assert exc.errors == (FieldError("trigger.default[0]", "is not an integer"),)
    assert ValidationFailed(FieldError("body.x", "nope")).message == "body.x: nope"


def test_within_keeps_the_class_code_status_and_details():
    exc = ValidationFailed(errors=[FieldError("a", "x"), FieldError("", "y")], code="odd", details={"n": 1})
    moved = exc.within("blueprints[1]")
    assert type(moved) is ValidationFailed
    assert moved.errors == (FieldError("blueprints[1].a", "x"), FieldError("blueprints[1]", "y"))
    assert (moved.code, moved.status, moved.details) == ("odd", 422, {"n": 1})


@pytest.mark.parametrize("cls, status", [(NotFound, 404), (Conflict, 409), (PortalError, 400)])
def test_every_portal_error_can_name_a_path(cls, status):
    exc = cls("no agent run among 7.", path="runIds")
    assert exc.errors == (FieldError("runIds", "no agent run among 7."),)
    assert exc.message == "runIds: no agent run among 7."
    assert exc.status == status
    plain = cls("Blueprint 'x' was not found.")
    assert plain.path == "" and plain.errors[0].parts == ()


def test_drf_details_become_field_errors_with_our_path_spelling():
    detail = {
        "name": ["This field is required."],
        "items": [{}, {"port": ["Not a number.", "Too big."]}, {"tags": [{"x": ["bad"]}]}],
        "nested": {"deeper": {"leaf": "plain string"}},
        "empty": {},
    }
    assert validation_detail_errors(detail) == [
        FieldError("name", "This field is required."),
        FieldError("items[1].port", "Not a number. Too big."),
        FieldError("items[2].tags[0].x", "bad"),
        FieldError("nested.deeper.leaf", "plain string"),
    ]
    assert validation_detail_errors(["Whole body wrong."]) == [FieldError("", "Whole body wrong.")]
    assert validation_detail_errors("bare") == [FieldError("", "bare")]


def test_a_drf_validation_error_leaves_in_the_envelope_with_the_errors_text():
    response = exception_handler(drf.ValidationError({"a": ["x"], "b": [{"c": ["y"]}]}), context={"request": None})
    assert response.status_code == 422
    assert response.data == {"ok": False, "error": "invalid_request", "message": "a: x; b[0].c: y"}


def test_a_portal_error_leaves_in_the_envelope_with_its_details():
    exc = ValidationFailed("2 entities would become invalid", path="schema.properties.n", details={"blockingEntities": 2})
    response = exception_handler(exc, context={"request": None})
    assert response.status_code == 422
    assert response.data == {"ok": False, "error": "invalid_request", "blockingEntities": 2,
                             "message": "schema.properties.n: 2 entities would become invalid"}


@pytest.mark.parametrize("value, path, error", [
    ({"a": ["ok", "b\x00d"]}, "", FieldError("a[1]", "must not contain NUL characters")),
    ({"n": float("inf")}, "properties", FieldError("properties.n", "is too large for a number")),
    ([1, {"k\x00": 1}], "", FieldError("body[1]", "the key 'k\\x00' must not contain NUL characters")),
    ("\ud800", "", FieldError("body", "must be valid Unicode (it holds a lone surrogate such as \\ud800)")),
    ([[[1]]], "", FieldError("", "JSON body is nested deeper than 2 levels.")),
])
def test_strictjson_problems_are_field_errors(value, path, error):
    assert strictjson.problem(value, path, max_depth=2 if value == [[[1]]] else None) == error


def test_strictjson_finds_no_problem_in_storable_json():
    assert strictjson.problem({"a": [1, 2.5, "x", None, {"b": True}]}) is None
