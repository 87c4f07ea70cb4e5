"""catalog/schemas/scorecard.json: a scorecard definition's shape is checked against a JSON Schema document (shape
errors before meaning errors, named by path as data); odd and hostile scorecards, through the API and the blueprint
admin's scorecards field, get a 422 (400 for what is not JSON) or a field error naming the path, never a 500."""
import json
import re

import pytest
from jsonschema import Draft202012Validator

from catalog import choices
from catalog.identifiers import check_key
from catalog.models import Blueprint
from catalog.scorecards import DEFAULT_LEVELS, MAX_LEVELS, MAX_RULES, scorecard_definition_clean
from catalog.shapes import schema_validator
from portal.errors import FieldError, ValidationFailed
from tests.support.admin import blueprint_form, form_errors, url

pytestmark = pytest.mark.django_db

SCHEMA = schema_validator("catalog", "scorecard").schema
RULE = {"identifier": "typed", "title": "Has a language", "level": "Silver",
        "query": {"combinator": "and", "conditions": [{"property": "language", "operator": "isNotEmpty"}]}}
READINESS = {"identifier": "readiness", "title": "Readiness", "rules": [RULE]}
DEEP = 10_000


@pytest.fixture
def shape_service(staff):
    """tests/support/admin.py's Service, added through the admin as a platform engineer would."""
    assert staff.post(url(Blueprint, "add"), blueprint_form()).status_code == 302
    return Blueprint.objects.get(identifier="Service")


def refused(data, blueprint):
    with pytest.raises(ValidationFailed) as caught:
        scorecard_definition_clean(data, blueprint=blueprint)
    assert len(caught.value.errors) == 1
    return caught.value.errors[0]


def with_rule(**changes):
    return {**READINESS, "rules": [{**RULE, **changes}]}


def nested_filter(depth):
    """A filter whose first condition is a rule set nested `depth` times."""
    condition = {"property": "language", "operator": "isNotEmpty"}
    for _ in range(depth):
        condition = {"combinator": "and", "rules": [condition]}
    return {"combinator": "and", "conditions": [condition]}


# -- the schema and the code ------------------------------------------------------------------------------------


def test_the_schema_is_a_valid_2020_12_schema():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMA)


def test_the_schema_agrees_with_the_code_constants():
    levels, rules = SCHEMA["properties"]["levels"], SCHEMA["properties"]["rules"]
    assert levels["maxItems"] == MAX_LEVELS and levels["minItems"] == 1
    assert f"1 to {MAX_LEVELS} levels" in levels["x-message"]
    assert rules["maxItems"] == MAX_RULES and f"at most {MAX_RULES} rules" in rules["x-message"]
    key = SCHEMA["$defs"]["key"]
    assert key["maxLength"] == choices.KEY_MAX  # and its pattern takes what check_key takes: below
    colour = SCHEMA["$defs"]["level"]["properties"]["color"]["pattern"]
    assert all(re.search(colour, level["color"]) for level in DEFAULT_LEVELS)
    assert Draft202012Validator(SCHEMA).is_valid({"identifier": "s", "rules": [], "levels": list(DEFAULT_LEVELS)})


@pytest.mark.parametrize("value", ["readiness", "a@b_c=d-e", "x" * choices.KEY_MAX, "x" * (choices.KEY_MAX + 1), "",
                                   "bad id", "a\n", "a.b", "ünïcode", None, 5])
def test_the_schema_takes_the_keys_check_key_takes(value):
    try:
        check_key(value, "identifier")
        expected = True
    except ValidationFailed:
        expected = False
    assert Draft202012Validator(SCHEMA).is_valid({"identifier": value, "rules": []}) is expected


def test_every_object_of_a_scorecard_refuses_keys_it_does_not_name():
    objects = [SCHEMA, *(SCHEMA["$defs"][name] for name in ("level", "rule", "query"))]
    for schema in objects:
        assert schema["additionalProperties"]["not"] == {}  # the same as false, naming the unknown key's own path
    assert set(SCHEMA["properties"]) == {"identifier", "title", "description", "blueprint", "filter", "levels", "rules"}


# -- errors as data ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data, expected", [
    ([], FieldError("body", "must be an object, got array")),
    ({"title": "x", "rules": []}, FieldError("identifier", "is required: a key (A-Z a-z 0-9 @ _ = - only, at most 100)")),
    ({**READINESS, "identifier": "a\n"},
     FieldError("identifier", "'a\\n' is not a valid key (A-Z a-z 0-9 @ _ = - only, at most 100).")),
    ({**READINESS, "title": "\n"}, FieldError("title", "must be a non-empty string of at most 200 characters without NUL")),
    ({**READINESS, "title": "x" * 201}, FieldError("title", "must be a non-empty string of at most 200 characters without NUL")),
    ({**READINESS, "blueprint": None}, FieldError("blueprint", "must be the identifier of the blueprint in the path, or absent")),
    ({**READINESS, "levels": [{"title": "A", "color": "gold\n"}]},
     FieldError("levels[0].color", 'must be a colour name (letters only), e.g. "gold"')),
    ({**READINESS, "levels": [{"title": "A", "color": "red"}] * (MAX_LEVELS + 1)},
     FieldError("levels", f"must be a list of 1 to {MAX_LEVELS} levels {{title, color}}")),
    ({**READINESS, "levels": [{"title": "A", "colour": "red"}]},
     FieldError("levels[0].colour", "is not a field of a level (color, title)")),
    ({**READINESS, "rules": [RULE] * (MAX_RULES + 1)}, FieldError("rules", f"must be a list of at most {MAX_RULES} rules")),
    ({**READINESS, "rules": ["typed"]}, FieldError("rules[0]", "must be an object {identifier, title, level, query}, got string")),
    (with_rule(level=2), FieldError("rules[0].level", "must be the title of one of the scorecard's levels, got number")),
    (with_rule(query=None), FieldError("rules[0].query", "must be an object {combinator, conditions}, got null")),
    (with_rule(query={"combinator": "and", "conditions": ["language"]}),
     FieldError("rules[0].query.conditions[0]",
                "must be a rule {property, operator, value} or a rule set {combinator, rules}")),
    (with_rule(query={**RULE["query"], "negate": True}),
     FieldError("rules[0].query.negate", "is not a field of a query (combinator, conditions)")),
    ({**READINESS, "filter": {"conditions": []}}, FieldError("filter.combinator", 'must be "and" or "or", got None')),
])
def test_shape_errors_name_the_path_as_data(shape_service, data, expected):
    assert refused(data, shape_service) == expected


def test_shape_errors_come_before_meaning_errors(shape_service):
    """A rule at a level the scorecard lacks (meaning) whose title is a number (shape): the shape is named."""
    assert refused(with_rule(level="Platinum", title=5), shape_service).path == "rules[0].title"
    assert refused(with_rule(level="Platinum"), shape_service) == FieldError(
        "rules[0].level", "must be one of the scorecard's levels ['Basic', 'Bronze', 'Silver', 'Gold'], got 'Platinum'")


def test_a_scorecard_as_the_api_returns_it_is_taken_back(shape_service, admin_api):
    created = admin_api.post("/v1/blueprints/Service/scorecards", READINESS, format="json")
    assert created.status_code == 201, created.json()
    returned = created.json()["scorecard"]
    assert returned["description"] == "" and returned["blueprint"] == "Service" and returned["filter"] is None
    assert scorecard_definition_clean(returned, blueprint=shape_service)["rules"] == [{**RULE, "description": ""}]


@pytest.mark.parametrize("data, path", [
    ({**READINESS, "title": "a\x00b"}, "title"),
    ({**READINESS, "title": float("nan")}, "title"),
    ({**READINESS, "description": float("-inf")}, "description"),
    ({**READINESS, "filter": nested_filter(DEEP)}, "filter.conditions[0].rules[0].rules[0]"),
])
def test_values_postgresql_cannot_store_and_deep_nesting_are_refused_naming_the_path(shape_service, data, path):
    assert refused(data, shape_service).path.startswith(path)


# -- through the API and the admin ------------------------------------------------------------------------------


def text_with(data, placeholder, raw):
    """`data` as JSON text with the string `placeholder` replaced by `raw` (JSON json.dumps would not write)."""
    return json.dumps(data).replace(json.dumps(placeholder), raw)


DEEP_FILTER_TEXT = ('{"combinator": "and", "conditions": [' + '{"combinator": "and", "rules": [' * DEEP
                    + '{"property": "language", "operator": "isNotEmpty"}' + "]}" * DEEP + "]}")

# (JSON text of a scorecard, status, start of the message for POST, refused by the body parser): a PUT of the list
# holding it second answers the same at `[1].` (the body parser names the list `body`: `body[1].`)
ODD_BODIES = [
    (json.dumps({**READINESS, "title": "a\u0000b"}), 422, "title: must not contain NUL", True),
    (text_with({**READINESS, "title": "NAN"}, "NAN", "NaN"), 400, "Malformed JSON", True),
    (text_with({**READINESS, "description": "INF"}, "INF", "Infinity"), 400, "Malformed JSON", True),
    (text_with({**READINESS, "description": "INF"}, "INF", "-1e400"), 422, "description: is too large", True),
    (text_with({**READINESS, "filter": "DEEP"}, "DEEP", DEEP_FILTER_TEXT), 422, "JSON body is nested deeper", True),
    (json.dumps({**READINESS, "title": 10 ** 400}), 422, "title: must be a non-empty string", False),
    (text_with({**READINESS, "title": "HUGE"}, "HUGE", "9" * 5000), 400, "Malformed JSON", True),
    (json.dumps({**READINESS, "colour": "red"}), 422, "colour: is not a field of a scorecard", False),
    (json.dumps(with_rule(extra=1)), 422, "rules[0].extra: is not a field of a rule", False),
    (json.dumps({**READINESS, "levels": {"title": "Gold"}}), 422, "levels: must be a list", False),
    (json.dumps(with_rule(query={"combinator": "xor", "conditions": []})), 422, "rules[0].query.combinator: ", False),
    (json.dumps({**READINESS, "rules": "typed"}), 422, "rules: must be a list", False),
]


@pytest.mark.parametrize("body, status, message, by_parser", ODD_BODIES)
def test_odd_scorecards_posted_are_refused_never_a_500(shape_service, admin_api, body, status, message, by_parser):
    response = admin_api.post("/v1/blueprints/Service/scorecards", body, content_type="application/json")
    assert response.status_code == status, response.content
    assert response.json()["message"].startswith(message), response.json()
    assert Blueprint.objects.get(pk=shape_service.pk).scorecards == []


@pytest.mark.parametrize("body, status, message, by_parser", ODD_BODIES)
def test_odd_scorecards_in_a_replaced_list_are_refused_at_their_index(shape_service, admin_api, body, status, message,
                                                                      by_parser):
    response = admin_api.put("/v1/blueprints/Service/scorecards", f"[{json.dumps(READINESS)}, {body}]",
                             content_type="application/json")
    assert response.status_code == status, response.content
    if status == 422 and ": " in message:
        message = f"body[1].{message}" if by_parser else f"[1].{message}"
    assert response.json()["message"].startswith(message), response.json()
    assert Blueprint.objects.get(pk=shape_service.pk).scorecards == []


@pytest.mark.parametrize("body, message", [
    *[(body, f"scorecards[0].{message}") for body, status, message, _ in ODD_BODIES if status == 422 and ": " in message],
    (text_with({**READINESS, "title": "NAN"}, "NAN", "NaN"), "scorecards[0].title: "),
    (text_with({**READINESS, "description": "INF"}, "INF", "Infinity"), "scorecards[0].description: "),
    (text_with({**READINESS, "filter": "DEEP"}, "DEEP", DEEP_FILTER_TEXT), "Enter valid JSON nested at most 32 levels"),
    (json.dumps(READINESS)[:-1], "Enter a valid JSON."),  # Django's own answer to what is not JSON, as before
    (text_with({**READINESS, "title": "HUGE"}, "HUGE", "9" * 5000), "Enter a valid JSON: Exceeds the limit"),
])
def test_odd_scorecards_in_the_admin_field_are_field_errors_never_a_500(staff, shape_service, body, message):
    response = staff.post(url(Blueprint, "change", shape_service.pk), {**blueprint_form(), "scorecards": f"[{body}]"})
    errors = form_errors(response)
    assert list(errors) == ["scorecards"]
    assert errors["scorecards"][0].startswith(message), errors
    assert Blueprint.objects.get(pk=shape_service.pk).scorecards == []
