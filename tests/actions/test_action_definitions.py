"""actions/definitions.py: a Port action JSON is accepted whole or refused naming the JSON path at fault."""
import copy

import pytest

from actions.definitions import action_definition_clean, duration_iso, duration_seconds
from portal.errors import ValidationFailed
from tests.support.action_definitions import DAY2, DEV_ENV, INPUTS, _set, with_change

pytestmark = pytest.mark.django_db


def test_spin_up_a_developer_environment_is_accepted(blueprints):
    clean = action_definition_clean(DEV_ENV, blueprints=blueprints)

    assert clean["trigger"] == {**DEV_ENV["trigger"], "type": "self-service"}
    assert clean["invocationMethod"] == {**DEV_ENV["invocationMethod"], "agent": False, "synchronized": False}
    assert clean["requiredApproval"] == {"type": "ANY"}
    assert clean["quota"] == {"perUser": {"limit": 3, "period": "day"}, "liveEntitiesPerUser": 2}
    assert clean["ttl"] == DEV_ENV["ttl"]
    assert clean["approvalTimeout"] == "P1D" and clean["runTimeout"] == "PT1H"  # the default run timeout
    assert clean["publish"] is True and clean["approvalNotification"] is None


def test_durations_round_trip():
    assert [duration_iso(duration_seconds(v)) for v in ("P1D", "PT1H", "PT90M", "P1DT1H1M1S")] == \
        ["P1D", "PT1H", "PT1H30M", "P1DT1H1M1S"]


def _drop(path):
    def change(data):
        *parents, last = path
        node = data
        for key in parents:
            node = node[key]
        del node[last]
    return change

ERRORS = [
    (_set(("identifier",), "has space"), "identifier: 'has space' is not a valid key"),
    (_set(("identifier",), "runs"), "identifier: 'runs' is reserved"),
    (_set(("title",), ""), "title: is required"),
    (_set(("colour",), "blue"), "body: unknown keys ['colour']"),
    (_set(("trigger", "type"), "cron"), "trigger.type: must be"),
    (_set(("trigger", "operation"), "UPDATE"), "trigger.operation: must be one of"),
    (_set(("trigger", "blueprintIdentifier"), "Nope"), "trigger.blueprintIdentifier: blueprint 'Nope' does not exist"),
    (_set(("trigger", "condition"), {"combinator": "and", "rules": []}), "trigger.condition: applies to DAY-2 and DELETE"),
    (_set(("trigger", "userInputs", "required"), ["branch", "ghost"]),
     "trigger.userInputs.required[1]: 'ghost' is not an input of this action"),
    (_set(("trigger", "userInputs", "order"), ["branch", "branch"]), "trigger.userInputs.order: names an input more than once"),
    (_set((*INPUTS, "bad key"), {"type": "string"}), "trigger.userInputs.properties.bad key: 'bad key' is not a valid key"),
    (_set((*INPUTS, "branch", "pattern"), "(unclosed"), "trigger.userInputs.properties.branch.pattern: is not a valid regular"),
    (_set((*INPUTS, "branch", "pattern"), "(a)\\1"), "trigger.userInputs.properties.branch.pattern: is not a valid regular"),
    (_set((*INPUTS, "branch", "default"), "Has Caps"), "trigger.userInputs.properties.branch.default: 'Has Caps' does not match"),
    (_set((*INPUTS, "size", "default"), "huge"), "trigger.userInputs.properties.size.default: 'huge' is not one of"),
    (_set((*INPUTS, "size", "enumColors"), {"tiny": "blue"}), "trigger.userInputs.properties.size.enumColors: colours for"),
    (_set((*INPUTS, "size", "type"), "text"), "trigger.userInputs.properties.size.type: must be one of"),
    (_set((*INPUTS, "owner", "format"), "timer"), "trigger.userInputs.properties.owner.format: must be one of"),
    (_set((*INPUTS, "owner", "minimum"), 1), "trigger.userInputs.properties.owner.minimum: must be a number on a number input"),
    (_set((*INPUTS, "service", "blueprint"), "Nope"), "trigger.userInputs.properties.service.blueprint: blueprint 'Nope'"),
    (_drop((*INPUTS, "service", "blueprint")), "trigger.userInputs.properties.service.blueprint: blueprint None"),
    (_set((*INPUTS, "service", "dataset", "rules", 0, "property"), "colour"),
     "trigger.userInputs.properties.service.dataset.rules[0].property"),
    (_set((*INPUTS, "owner", "dataset"), {"combinator": "and", "rules": []}),
     "trigger.userInputs.properties.owner.dataset: applies to entity inputs only"),
    (_set((*INPUTS, "owner", "visible"), {"jqQuery": ".form | ("}), "trigger.userInputs.properties.owner.visible.jqQuery: does not"),
    (_set((*INPUTS, "list"), {"type": "array", "items": {"type": "string", "format": "entity", "blueprint": "Ghost"}}),
     "trigger.userInputs.properties.list.items.blueprint: blueprint 'Ghost'"),
    (_set(("invocationMethod", "type"), "AZURE"), "invocationMethod.type: must be one of"),
    (_set(("invocationMethod", "url"), "ftp://x"), "invocationMethod.url: 'ftp://x' is not an http(s) URL"),
    (_set(("invocationMethod", "url"), "https://x.example.com/a b"), "invocationMethod.url: 'https://x.example.com/a b' is not"),
    (_set(("invocationMethod", "url"), "https://x.example.com/\n"), "invocationMethod.url: 'https://x.example.com/\\n' is not"),
    (_set(("invocationMethod", "url"), "http://["), "invocationMethod.url: 'http://[' is not an http(s) URL"),
    (_set(("approvalNotification",), {"type": "webhook", "url": "https://a.example.com/\x07"}),
     "approvalNotification.url: 'https://a.example.com/\\x07' is not an http(s) URL"),
    (_set((*INPUTS, "branch", "pattern"), "(a"), "trigger.userInputs.properties.branch.pattern: is not a valid regular "
                                                  "expression (missing ): (a)"),
    (_set((*INPUTS, "branch", "pattern"), "\\pL"), "trigger.userInputs.properties.branch.pattern: is not a regular expression "
                                                    "JSON Schema validators accept"),
    (_set(("invocationMethod", "method"), "TRACE"), "invocationMethod.method: must be one of"),
    (_set(("invocationMethod", "headers"), {"X-N": 1}), "invocationMethod.headers.X-N: must be a string"),
    (_set(("invocationMethod", "body", "branch"), "{{ .inputs.branch | }}"),
     "invocationMethod.body.branch: template {{ .inputs.branch | }} does not compile"),
    (_set(("invocationMethod", "body", "nested"), [{"x": "a {{ ]] }} b"}]), "invocationMethod.body.nested[0].x: template"),
    (_set(("invocationMethod", "url"), "https://x/{{ env.HOME }}"), "invocationMethod.url: template {{ env.HOME }} does not"),
    (_set(("invocationMethod",), {"type": "GITHUB", "org": "acme", "repo": "infra"}), "invocationMethod.workflow: is required"),
    (_set(("invocationMethod",), {"type": "GITLAB", "projectName": "infra"}), "invocationMethod.groupName: is required"),
    (_set(("invocationMethod",), {"type": "UPSERT_ENTITY", "blueprintIdentifier": "Environment", "mapping": {"title": "x"}}),
     "invocationMethod.mapping.identifier: is required"),
    (_set(("invocationMethod",), {"type": "UPSERT_ENTITY", "blueprintIdentifier": "Nope", "mapping": {"identifier": "x"}}),
     "invocationMethod.blueprintIdentifier: blueprint 'Nope' does not exist"),
    (_set(("invocationMethod",), {"type": "SLACK", "channel": "#envs"}), "invocationMethod.text: is required"),
    (_set(("requiredApproval",), {"type": "SOME"}), "requiredApproval: must be false, true"),
    (_set(("approvalNotification",), {"type": "sms"}), "approvalNotification.type: must be"),
    (_set(("approvalNotification",), {"type": "webhook", "format": "json"}), "approvalNotification.url: is required"),
    (_set(("publish",), "yes"), "publish: must be true or false"),
    (_set(("quota", "perUser"), {"limit": 0, "period": "day"}), "quota.perUser.limit: must be a positive integer"),
    (_set(("quota", "perTeam"), {"limit": 2, "period": "fortnight"}), "quota.perTeam.period: must be one of"),
    (_set(("approvalTimeout",), "1 day"), "approvalTimeout: '1 day' is not an ISO 8601 duration"),
    (_set(("runTimeout",), "PT0S"), "runTimeout: must be longer than zero"),
    (_set(("ttl", "property"), "createdOn"), "ttl.property: 'createdOn' is not a timer property"),
    (_drop(("ttl", "default")), "ttl.default: is required"),
    (_set(("ttl", "default"), "P30D"), "ttl.default: P30D is longer than the maximum P14D"),
    (_set(("ttl", "extendBy"), "P-1D"), "ttl.extendBy: 'P-1D' is not an ISO 8601 duration"),
]


@pytest.mark.parametrize("change,message", ERRORS, ids=[m.split(":")[0] + f"#{i}" for i, (_, m) in enumerate(ERRORS)])
def test_each_error_names_its_path(blueprints, change, message):
    with pytest.raises(ValidationFailed) as caught:
        action_definition_clean(with_change(change), blueprints=blueprints)
    assert caught.value.message.startswith(message), caught.value.message
    assert caught.value.status == 422


def test_day2_condition_is_validated_against_its_blueprint(blueprints):
    clean = action_definition_clean(DAY2, blueprints=blueprints)
    assert clean["trigger"]["condition"] == DAY2["trigger"]["condition"]
    assert clean["invocationMethod"]["reportWorkflowStatus"] is True

    bad = copy.deepcopy(DAY2)
    bad["trigger"]["condition"]["rules"][0]["operator"] = "equals"
    with pytest.raises(ValidationFailed, match=r"^trigger\.condition\.rules\[0\]\.operator"):
        action_definition_clean(bad, blueprints=blueprints)
    for key in ("ttl", "quota"):
        extension = {"ttl": {"property": "expiresAt", "default": "P1D"}, "quota": {"liveEntitiesPerUser": 1}}[key]
        with pytest.raises(ValidationFailed, match=rf"^{key}(\.liveEntitiesPerUser)?: applies to CREATE actions only"):
            action_definition_clean({**DAY2, key: extension}, blueprints=blueprints)


AUTOMATION = {
    "identifier": "expire_env",
    "title": "Tear down expired environments",
    "trigger": {"type": "automation",
                "event": {"type": "TIMER_PROPERTY_EXPIRED", "blueprintIdentifier": "Environment", "propertyIdentifier": "expiresAt"},
                "condition": {"type": "JQ", "expressions": [".diff.after.properties.branch != \"main\""], "combinator": "and"}},
    "invocationMethod": {"type": "UPSERT_ENTITY", "blueprintIdentifier": "Environment",
                         "mapping": {"identifier": "{{ .event.context.entityIdentifier }}", "properties": {"branch": "gone"}}},
}


def test_automation_triggers(blueprints):
    clean = action_definition_clean(AUTOMATION, blueprints=blueprints)
    assert clean["trigger"]["event"] == AUTOMATION["trigger"]["event"]
    assert clean["trigger"]["condition"]["expressions"] == AUTOMATION["trigger"]["condition"]["expressions"]

    cases = [
        ({"type": "ENTITY_MOVED", "blueprintIdentifier": "Environment"}, None, "trigger.event.type: must be one of"),
        ({"type": "TIMER_PROPERTY_EXPIRED", "blueprintIdentifier": "Environment", "propertyIdentifier": "createdOn"}, None,
         "trigger.event.propertyIdentifier: 'createdOn' is not a timer property"),
        ({"type": "ENTITY_CREATED"}, None, "trigger.event.blueprintIdentifier: blueprint None does not exist"),
        ({"type": "RUN_UPDATED", "actionIdentifier": "ghost"}, None, "trigger.event.actionIdentifier: action 'ghost' does not"),
        ({"type": "ANY_ENTITY_CHANGE", "blueprintIdentifier": "Service"},
         {"type": "JQ", "expressions": [".diff | ("]}, "trigger.condition.expressions[0]: does not compile"),
        ({"type": "ANY_ENTITY_CHANGE", "blueprintIdentifier": "Service"},
         {"type": "JQ", "expressions": ["true"], "combinator": "xor"}, "trigger.condition.combinator: must be"),
    ]
    for event, condition, message in cases:
        trigger = {"type": "automation", "event": event, **({"condition": condition} if condition else {})}
        with pytest.raises(ValidationFailed) as caught:
            action_definition_clean({**AUTOMATION, "trigger": trigger}, blueprints=blueprints, actions={"spin_up_dev_env"})
        assert caught.value.message.startswith(message), caught.value.message
    runs = {"type": "automation", "event": {"type": "RUN_CREATED", "actionIdentifier": "spin_up_dev_env"}}
    assert action_definition_clean({**AUTOMATION, "trigger": runs}, blueprints=blueprints,
                                   actions={"spin_up_dev_env"})["trigger"]["event"]["actionIdentifier"] == "spin_up_dev_env"
    with pytest.raises(ValidationFailed, match="^requiredApproval: automations run without approval"):
        action_definition_clean({**AUTOMATION, "requiredApproval": True}, blueprints=blueprints)


def test_array_of_entities_with_dataset_on_the_array(blueprints):
    data = with_change(_set((*INPUTS, "services"), {
        "type": "array", "items": {"type": "string", "format": "entity", "blueprint": "Service"},
        "dataset": {"combinator": "and", "rules": [{"property": "language", "operator": "=", "value": "Go"}]}}))
    assert "services" in action_definition_clean(data, blueprints=blueprints)["trigger"]["userInputs"]["properties"]
    data["trigger"]["userInputs"]["properties"]["services"]["dataset"]["rules"][0]["property"] = "ghost"
    with pytest.raises(ValidationFailed, match=r"^trigger\.userInputs\.properties\.services\.dataset\.rules\[0\]\.property"):
        action_definition_clean(data, blueprints=blueprints)
