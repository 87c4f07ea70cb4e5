"""actions/schemas/action.json: an action definition's shape is checked against a JSON Schema document (shape
errors before meaning errors, named by path as data); odd and hostile definitions get a 422 naming the path,
never a 500 or a RecursionError."""
import copy
import json

import pytest
from jsonschema import Draft202012Validator

from actions.choices import INVOCATION_TYPES, Operation, TriggerType
from actions.definitions import TOP_KEYS, action_definition_clean
from actions.models import Action
from catalog.shapes import schema_validator
from portal.errors import FieldError, ValidationFailed
from tests.support.action_definitions import DEV_ENV, INPUTS, _set, with_change

pytestmark = pytest.mark.django_db

SCHEMA = schema_validator("actions", "action").schema


def refused(data, blueprints):
    with pytest.raises(ValidationFailed) as caught:
        action_definition_clean(data, blueprints=blueprints)
    assert len(caught.value.errors) == 1
    return caught.value.errors[0]


def test_the_schema_is_a_valid_2020_12_schema_naming_the_choices_the_code_uses():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMA)
    defs = SCHEMA["$defs"]
    assert defs["invocationMethod"]["properties"]["type"]["enum"] == list(INVOCATION_TYPES)
    assert defs["selfServiceTrigger"]["properties"]["operation"]["enum"] == list(Operation.values)
    assert defs["trigger"]["properties"]["type"]["enum"] == list(TriggerType.values)
    assert TOP_KEYS == set(SCHEMA["properties"]) and {"identifier", "trigger", "ttl", "createdAt"} <= TOP_KEYS
    for field in ("title", "icon"):
        assert SCHEMA["properties"][field]["maxLength"] == Action._meta.get_field(field).max_length


@pytest.mark.parametrize("change, expected", [
    (_set(("notifications",), []), FieldError("notifications", "must be an object, got list")),
    (_set(("quota", "perUser"), {"limit": 10 ** 30, "period": "day"}), FieldError("quota.perUser.limit", "must be at most 1000000")),
    (_set(("quota", "perUser"), {"period": "day"}), FieldError("quota.perUser.limit", "must be a positive integer")),
    (_set((*INPUTS, "owner", "items"), {"type": "string"}), FieldError(f"{'.'.join(INPUTS)}.owner.items",
                                                                     "applies to array inputs only")),
    (_set((*INPUTS, "owner", "visible"), {"jq": "true"}),
     FieldError(f"{'.'.join(INPUTS)}.owner.visible", 'must be true, false or {"jqQuery": "<jq>"}')),
    (_set(("trigger", "userInputs", "order"), ["branch", 7]),
     FieldError("trigger.userInputs.order[1]", "must be a list of input identifiers")),
    (_set(("invocationMethod",), {"type": "WEBHOOK"}), FieldError("invocationMethod.url", "is required")),
    (_set(("invocationMethod",), {"type": "EXTEND_TTL", "url": "https://x.example.com"}),
     FieldError("invocationMethod", "unknown keys ['url']")),
    (_set(("trigger", "type"), "automation"), FieldError("trigger", "unknown keys ['blueprintIdentifier', 'operation', 'userInputs']")),
])
def test_shape_errors_name_the_path_as_data(blueprints, change, expected):
    assert refused(with_change(change), blueprints) == expected


def test_shape_errors_come_before_meaning_errors(blueprints):
    """An unknown blueprint (meaning) and a title that is no string (shape) on the same input: the shape is named."""
    data = with_change(_set((*INPUTS, "service"), {"type": "string", "format": "entity", "blueprint": "Nope", "title": 5}))
    assert refused(data, blueprints) == FieldError("trigger.userInputs.properties.service.title", "must be a string")
    data["trigger"]["userInputs"]["properties"]["service"]["title"] = "Service"
    assert refused(data, blueprints).path == "trigger.userInputs.properties.service.blueprint"


def test_automations_refuse_self_service_extensions(blueprints):
    automation = {"identifier": "cleanup", "title": "Clean up",
                  "trigger": {"type": "automation", "event": {"type": "ENTITY_DELETED", "blueprintIdentifier": "Service"}},
                  "invocationMethod": {"type": "WEBHOOK", "url": "https://hooks.example.com/cleanup"}}
    assert action_definition_clean(automation, blueprints=blueprints)["requiredApproval"] is False
    assert refused({**automation, "quota": {"perUser": {"limit": 1, "period": "day"}}}, blueprints) == \
        FieldError("quota", "applies to self-service actions only")
    assert refused({**automation, "requiredApproval": {"type": "ANY"}}, blueprints) == \
        FieldError("requiredApproval", "automations run without approval")


def test_ten_thousand_levels_of_nesting_are_refused_naming_the_path(blueprints):
    deep = "{{ .inputs.branch }}"
    for _ in range(10_000):
        deep = {"n": deep}
    error = refused(with_change(_set(("invocationMethod", "body", "deep"), deep)), blueprints)
    assert error.path.startswith("invocationMethod.body.deep.n.n") and "nested deeper" in error.message
    items = {"type": "string"}
    for _ in range(10_000):
        items = {"type": "array", "items": items}
    assert refused(with_change(_set((*INPUTS, "list"), items)), blueprints).path.startswith(
        "trigger.userInputs.properties.list.items.items")


@pytest.mark.parametrize("change, path", [
    (_set(("invocationMethod", "headers", "X-Run"), "a\x00b"), "invocationMethod.headers.X-Run"),
    (_set(("invocationMethod", "body", "size"), float("nan")), "invocationMethod.body.size"),
    (_set((*INPUTS, "owner", "title"), "\udfff"), "trigger.userInputs.properties.owner.title"),
    (_set(("title",), None), "title"),
    (_set(("trigger",), "self-service"), "trigger"),
])
def test_odd_values_are_refused_naming_the_path(blueprints, change, path):
    assert refused(with_change(change), blueprints).path == path


def test_huge_numbers_are_refused_by_their_bounds_never_a_crash(blueprints):
    data = with_change(_set((*INPUTS, "count"), {"type": "number", "minimum": 10 ** 400, "maximum": 1}))
    assert refused(data, blueprints).path == "trigger.userInputs.properties.count.minimum"
    data = with_change(_set(("quota", "liveEntitiesPerUser"), 10 ** 400))
    assert refused(data, blueprints) == FieldError("quota.liveEntitiesPerUser", "must be at most 1000000")


def test_odd_bodies_through_the_api_get_a_422_naming_the_path(admin_api, blueprints):
    body = json.dumps(with_change(_set(("invocationMethod", "body", "size"), 1.0))).replace(": 1.0", ": 1e999")
    response = admin_api.post("/v1/actions", body, content_type="application/json")
    assert response.status_code == 422 and response.json()["message"].startswith("invocationMethod.body.size: ")
    bad = copy.deepcopy(DEV_ENV)
    bad["trigger"]["userInputs"]["properties"]["branch"]["pattern"] = 5
    response = admin_api.post("/v1/actions", bad, format="json")
    assert response.status_code == 422
    assert response.json()["message"] == "trigger.userInputs.properties.branch.pattern: must be a string, got int"
    assert not Action.objects.exists()
