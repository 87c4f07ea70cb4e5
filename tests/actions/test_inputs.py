"""actions/inputs.py: run inputs validated server-side — types, formats, RE2 patterns, bounds, users, teams,
and entity inputs that must exist, be visible to the requester and match the input's dataset."""
import copy
import time

import pytest

from actions.definitions import action_definition_clean
from actions.inputs import inputs_clean
from actions.models import Action
from catalog.models import Blueprint
from catalog.services.permissions import blueprint_permissions_update
from portal.actor import Actor
from portal.errors import ValidationFailed
from tests.factories import EntityFactory, UserFactory
from tests.support.action_definitions import DEV_ENV, catalog_setup

pytestmark = pytest.mark.django_db

EVERY_KIND = {
    "when": {"type": "string", "format": "date-time"},
    "link": {"type": "string", "format": "url"},
    "mail": {"type": "string", "format": "email"},
    "config": {"type": "string", "format": "yaml"},
    "notes": {"type": "string", "format": "markdown"},
    "script": {"type": "string", "format": "multi-line"},
    "team": {"type": "string", "format": "team"},
    "ip4": {"type": "string", "format": "ipv4"},
    "ip6": {"type": "string", "format": "ipv6"},
    "name": {"type": "string", "minLength": 3, "maxLength": 10},
    "replicas": {"type": "number", "minimum": 1, "maximum": 10, "default": 1},
    "debug": {"type": "boolean", "default": False},
    "labels": {"type": "object"},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    "services": {"type": "array", "items": {"type": "string", "format": "entity", "blueprint": "Service"}},
    "slow": {"type": "string", "pattern": "^(a+)+$"},
}


@pytest.fixture
def inputs_world(db):
    """Service entities: `web` and `api` (tier web, owned by platform), `batch` (tier batch, platform) and
    `hidden` (tier web, owned by payments). Members read only entities their team owns."""
    catalog_setup()
    system = Actor.system()
    dev = UserFactory(email="dev@example.com", teams=["platform"])
    UserFactory(email="owner@example.com")
    UserFactory(email="gone@example.com").__class__.objects.filter(email="gone@example.com").update(is_active=False)
    UserFactory(email="pay@example.com", teams=["payments"])
    service = Blueprint.objects.get(identifier="Service")
    for identifier, tier, team in (("web", "web", "platform"), ("api", "web", "platform"), ("batch", "batch", "platform"),
                                   ("hidden", "web", "payments")):
        EntityFactory(blueprint=service, identifier=identifier, team=[team],
                      properties={"tier": tier})
    blueprint_permissions_update(actor=system, blueprint=service,
                                 data={"entities": {"read": {"roles": [], "ownedByTeam": True}}})
    definition = copy.deepcopy(DEV_ENV)
    definition["trigger"]["userInputs"]["properties"].update(EVERY_KIND)
    blueprints = {bp.identifier: bp for bp in Blueprint.objects.all()}
    action = Action(identifier="env", trigger=action_definition_clean(definition, blueprints=blueprints)["trigger"])
    return action, dev


def clean(inputs_world, **values):
    action, dev = inputs_world
    return inputs_clean(action, {"service": "web", **values}, user=dev)


def test_valid_inputs_with_defaults_applied(inputs_world):
    result = clean(inputs_world, service={"identifier": "api"}, branch="feature/x", owner="owner@example.com",
                   when="2024-06-09T12:28:18Z", link="https://example.com/a", mail="a@example.com", config="a: [1, 2]",
                   notes="# hi", script="line 1\nline 2", team="payments", ip4="10.0.0.1", ip6="::1", name="abc",
                   labels={"a": 1}, tags=["x", "y"], services=["web", {"identifier": "batch"}], slow="aaaa")
    assert result == {
        "branch": "feature/x", "size": "small", "owner": "owner@example.com", "service": "api",
        "when": "2024-06-09T12:28:18.000Z", "link": "https://example.com/a", "mail": "a@example.com", "config": "a: [1, 2]",
        "notes": "# hi", "script": "line 1\nline 2", "team": "payments", "ip4": "10.0.0.1", "ip6": "::1", "name": "abc",
        "replicas": 1, "debug": False, "labels": {"a": 1}, "tags": ["x", "y"], "services": ["web", "batch"], "slow": "aaaa",
    }


BAD = [
    ({"colour": "red"}, "properties.colour: is not an input of this action"),
    ({"service": None}, "properties.service: is required"),
    ({"branch": "Bad Branch"}, "properties.branch: 'Bad Branch' does not match"),
    ({"size": "huge"}, "properties.size: 'huge' is not one of"),
    ({"owner": "nobody@example.com"}, "properties.owner: user 'nobody@example.com' does not exist"),
    ({"owner": "gone@example.com"}, "properties.owner: user 'gone@example.com' does not exist"),
    ({"owner": "not-an-email"}, "properties.owner: 'not-an-email' is not a 'user'"),
    ({"team": "ghosts"}, "properties.team: team 'ghosts' does not exist"),
    ({"when": "yesterday"}, "properties.when: 'yesterday' is not a date-time with a UTC offset or Z"),
    ({"link": "not a url"}, "properties.link: 'not a url' is not a 'url'"),
    ({"mail": "nope"}, "properties.mail: 'nope' is not a 'email'"),
    ({"config": "a: [1, 2"}, "properties.config: is not valid YAML"),
    ({"ip4": "999.1.1.1"}, "properties.ip4: '999.1.1.1' is not a 'ipv4'"),
    ({"ip6": "10.0.0.1"}, "properties.ip6: '10.0.0.1' is not a 'ipv6'"),
    ({"name": "ab"}, "properties.name: 'ab' is too short"),
    ({"name": "a" * 11}, "properties.name: 'aaaaaaaaaaa' is too long"),
    ({"replicas": 0}, "properties.replicas: 0 is less than the minimum of 1"),
    ({"replicas": 11}, "properties.replicas: 11 is greater than the maximum of 10"),
    ({"replicas": "3"}, "properties.replicas: '3' is not of type 'number'"),
    ({"replicas": True}, "properties.replicas: True is not of type 'number'"),
    ({"debug": "yes"}, "properties.debug: 'yes' is not of type 'boolean'"),
    ({"labels": []}, "properties.labels: [] is not of type 'object'"),
    ({"tags": ["a", 1]}, "properties.tags[1]: 1 is not of type 'string'"),
    ({"tags": ["a", "b", "c", "d"]}, "properties.tags: ['a', 'b', 'c', 'd'] is too long"),
    ({"service": 7}, "properties.service: 7 is not of type 'string'"),
]


@pytest.mark.parametrize("values,message", BAD, ids=[m.split(":")[0] + f"#{i}" for i, (_, m) in enumerate(BAD)])
def test_bad_inputs_name_their_path(inputs_world, values, message):
    with pytest.raises(ValidationFailed) as caught:
        clean(inputs_world, **values)
    assert caught.value.message.startswith(message), caught.value.message
    assert caught.value.status == 422


def test_pathological_pattern_returns_fast(inputs_world):
    """`^(a+)+$` on 100k a's and a b: exponential for a backtracking engine, linear on RE2."""
    started = time.monotonic()
    with pytest.raises(ValidationFailed, match="^properties.slow: "):
        clean(inputs_world, slow="a" * 100_000 + "b")
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("values,message", [
    ({"service": "hidden"}, "properties.service: entity 'hidden' of blueprint 'Service' was not found"),
    ({"service": "missing"}, "properties.service: entity 'missing' of blueprint 'Service' was not found"),
    ({"service": "batch"}, "properties.service: entity 'batch' does not match the input's dataset"),
    ({"services": ["web", "hidden"]}, "properties.services[1]: entity 'hidden' of blueprint 'Service' was not found"),
])
def test_entity_inputs_must_exist_be_visible_and_match_the_dataset(inputs_world, values, message):
    with pytest.raises(ValidationFailed) as caught:
        clean(inputs_world, **values)
    assert caught.value.message == message


def test_entity_visible_to_its_team_member_and_to_the_system(inputs_world):
    action, _ = inputs_world
    from django.contrib.auth import get_user_model

    payer = get_user_model().objects.get(email="pay@example.com")
    assert inputs_clean(action, {"service": "hidden"}, user=payer)["service"] == "hidden"
    assert inputs_clean(action, {"service": "hidden"}, user=None)["service"] == "hidden"  # automations: no visibility filter
    with pytest.raises(ValidationFailed, match="does not match the input's dataset"):
        inputs_clean(action, {"service": "batch"}, user=None)


def test_one_query_per_entity_input(inputs_world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    action, dev = inputs_world

    def entity_queries(services):
        with CaptureQueriesContext(connection) as captured:
            inputs_clean(action, {"service": "web", "services": services, "owner": "owner@example.com"}, user=dev)
        return len(captured), [q for q in captured.captured_queries if '"catalog_entity"' in q["sql"]]

    entity_queries(["web"])  # warm the user's cached admin flag and teams
    total_one, queries_one = entity_queries(["web"])
    total_three, queries_three = entity_queries(["web", "api", "batch"])
    assert len(queries_one) == len(queries_three) == 2  # one per entity input, whatever the number of identifiers
    assert total_one == total_three
