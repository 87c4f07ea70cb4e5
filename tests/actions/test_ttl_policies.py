"""ttl_policies() (actions/selectors/ttl.py), the one answer to "which action's TTL governs this timer" for the
service and the environments page; ttl_extension and ttl_may_extend, what the Extend button shows and ttl_extend
enforces."""
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from actions.models import Action, Run
from actions.selectors.ttl import ttl_policies
from actions.services.actions import action_create, action_permissions_update
from actions.services.ttl import ttl_extend, ttl_extension, ttl_may_extend, ttl_policy_action
from catalog.models import Timer
from catalog.services.blueprints import blueprint_create
from portal.actor import Actor
from portal.errors import Forbidden, ValidationFailed
from tests.factories import UserFactory
from tests.support.environments import CREATE, dev_environment, ttl_world

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()
POLICY = {"property": "ttl", "default": "P5D", "maximum": "P14D", "extendBy": "P3D"}


@pytest.fixture
def ttl_policy_world(db):
    actions = ttl_world()
    return {"actions": actions, "dev": UserFactory(email="dev@example.com"),
            "other": UserFactory(email="other@example.com"), "admin": UserFactory(email="admin@example.com", admin=True)}


def another_create(identifier, blueprint="devEnvironment", **ttl):
    trigger = {**CREATE["trigger"], "blueprintIdentifier": blueprint}
    data = {**CREATE, "identifier": identifier, "title": identifier, "trigger": trigger, "ttl": {**POLICY, **ttl}}
    return action_create(actor=SYSTEM, data=data)


def rows(client, user):
    client.force_login(user)
    html = re.sub(r"\s+", " ", client.get("/environments/").content.decode())
    return re.findall(r'<tr id="env-\d+">(.*?)</tr>', html)


# --- ttl_policies -----------------------------------------------------------------------------------------------

def test_policies_by_blueprint_and_timer_property(ttl_policy_world):
    assert ttl_policies() == {("devEnvironment", "ttl"): ttl_policy_world["actions"]["create"]}


def test_the_first_action_by_identifier_governs_a_timer_and_others_govern_their_own(ttl_policy_world):
    blueprint_create(actor=SYSTEM, data={"identifier": "sandbox", "title": "Sandbox", "schema": {"properties": {
        "branch": {"type": "string"}, "expires": {"type": "string", "format": "timer"},
        "ttl": {"type": "string", "format": "timer"}}}})
    earlier = another_create("a_create_dev_env", extendBy="P1D")
    expires = another_create("b_create_sandbox", blueprint="sandbox", property="expires")
    ttl = another_create("c_create_sandbox", blueprint="sandbox")
    policies = ttl_policies()
    assert policies == {("devEnvironment", "ttl"): earlier, ("sandbox", "expires"): expires, ("sandbox", "ttl"): ttl}
    assert ttl_policy_action(blueprint_identifier="devEnvironment", property="ttl") == earlier
    assert ttl_policy_action(blueprint_identifier="sandbox", property="ttl") == ttl
    assert ttl_policy_action(blueprint_identifier="sandbox", property="expires") == expires
    assert ttl_policy_action(blueprint_identifier="sandbox") == expires  # any timer: the first by identifier
    assert ttl_policy_action(blueprint_identifier="Service") is None


def test_actions_without_a_ttl_or_not_creating_govern_nothing(ttl_policy_world):
    Action.objects.filter(pk=ttl_policy_world["actions"]["create"].pk).update(ttl=None)
    assert ttl_policies() == {}
    assert ttl_policy_action(blueprint_identifier="devEnvironment") is None
    assert Action.objects.filter(operation="DELETE", blueprint_identifier="devEnvironment").exists()


def test_the_page_extends_by_the_policy_the_service_applies(client, ttl_policy_world):
    another_create("a_create_dev_env", extendBy="P1D")  # governs the blueprint's ttl timers from now on
    entity = dev_environment(ttl_policy_world["dev"], "env-mine")
    Action.objects.filter(identifier="create_dev_env").update(ttl=None)  # its creating run's action has no policy now
    (row,) = rows(client, ttl_policy_world["dev"])
    assert ">Extend by 1d</button>" in row
    before = Timer.objects.get(entity=entity).expires_at
    result = ttl_extend(actor=Actor(user=ttl_policy_world["dev"]), entity=entity)
    assert result["extendBy"] == "P1D"
    assert Timer.objects.get(entity=entity).expires_at - before == timedelta(days=1)


# --- ttl_extension ----------------------------------------------------------------------------------------------

def test_an_extension_goes_the_whole_step_below_the_maximum(ttl_policy_world):
    entity = dev_environment(ttl_policy_world["dev"], "env-new", expires_in=timedelta(days=2))
    timer = Timer.objects.get(entity=entity)
    extension = ttl_extension(entity=entity, timer=timer, policy=POLICY)
    assert extension.step == timedelta(days=3) and extension.expires_at == timer.expires_at + timedelta(days=3)
    assert extension.limit == entity.created_at.replace(microsecond=entity.created_at.microsecond // 1000 * 1000) \
        + timedelta(days=14)
    assert not extension.capped and not extension.at_maximum


def test_near_the_maximum_the_page_and_the_service_both_stop_there(client, ttl_policy_world):
    entity = dev_environment(ttl_policy_world["dev"], "env-old", created_ago=timedelta(days=12), expires_in=timedelta(days=1))
    timer = Timer.objects.get(entity=entity)
    extension = ttl_extension(entity=entity, timer=timer, policy=POLICY)
    assert extension.capped and not extension.at_maximum and extension.expires_at == extension.limit
    (row,) = rows(client, ttl_policy_world["dev"])
    assert ">Extend to the maximum</button>" in row
    result = ttl_extend(actor=Actor(user=ttl_policy_world["dev"]), entity=entity)
    assert Timer.objects.get(entity=entity).expires_at == extension.limit
    assert result["maximumAt"] == result["expiresAt"]


def test_at_the_maximum_the_page_offers_no_extension_and_the_service_refuses_one(client, ttl_policy_world):
    entity = dev_environment(ttl_policy_world["dev"], "env-max", created_ago=timedelta(days=13), expires_in=timedelta(days=1))
    Timer.objects.filter(entity=entity).update(expires_at=entity.created_at + timedelta(days=14))
    extension = ttl_extension(entity=entity, timer=Timer.objects.get(entity=entity), policy=POLICY)
    assert extension.at_maximum
    (row,) = rows(client, ttl_policy_world["dev"])
    assert "At its maximum of 14d: it cannot be extended." in row
    with pytest.raises(ValidationFailed) as refused:
        ttl_extend(actor=Actor(user=ttl_policy_world["dev"]), entity=entity)
    assert refused.value.path == "properties.ttl"
    assert refused.value.message.startswith("properties.ttl: the TTL is already at its maximum of P14D")


def test_an_expired_timer_extends_from_now(ttl_policy_world):
    entity = dev_environment(ttl_policy_world["dev"], "env-late", expires_in=timedelta(hours=-2))
    now = timezone.now()
    extension = ttl_extension(entity=entity, timer=Timer.objects.get(entity=entity), policy=POLICY, now=now)
    assert extension.base >= now - timedelta(milliseconds=1) and extension.expires_at == extension.base + timedelta(days=3)


# --- ttl_may_extend ---------------------------------------------------------------------------------------------

def test_who_may_extend(ttl_policy_world):
    entity = dev_environment(ttl_policy_world["dev"], "env-mine")
    run = Run.objects.get(result_entity=entity)
    never = lambda: False  # noqa: E731 - the permission to run the CREATE action, refused
    assert ttl_may_extend(None, entity=entity, creating_run=run, may_run_action=never)  # the system
    assert ttl_may_extend(ttl_policy_world["admin"], entity=entity, creating_run=run, may_run_action=never)
    assert ttl_may_extend(ttl_policy_world["dev"], entity=entity, creating_run=run, may_run_action=never)  # requested it
    assert not ttl_may_extend(ttl_policy_world["other"], entity=entity, creating_run=run, may_run_action=never)
    assert ttl_may_extend(ttl_policy_world["other"], entity=entity, creating_run=run, may_run_action=lambda: True)
    entity.created_by = "other@example.com"
    assert ttl_may_extend(ttl_policy_world["other"], entity=entity, creating_run=None, may_run_action=never)  # created it


def test_without_the_create_permission_admins_and_the_owner_still_extend_and_a_stranger_may_not(client, ttl_policy_world):
    entity = dev_environment(ttl_policy_world["dev"], "env-mine")
    action_permissions_update(actor=SYSTEM, action=ttl_policy_world["actions"]["create"], data={"execute": {"roles": []}})
    client.force_login(ttl_policy_world["admin"])
    (row,) = re.findall(r'<tr id="env-\d+">(.*?)</tr>',
                        re.sub(r"\s+", " ", client.get("/environments/?all=1").content.decode()))
    assert ">Extend by 3d</button>" in row  # admins may
    stranger = UserFactory(email="stranger@example.com")
    with pytest.raises(Forbidden, match="^You may not extend the TTL of entity 'env-mine'"):
        ttl_extend(actor=Actor(user=stranger), entity=entity)
    assert ttl_extend(actor=Actor(user=ttl_policy_world["dev"]), entity=entity)["extendBy"] == "P3D"  # the owner may


def test_the_creating_runs_policy_governs_for_the_page_and_the_service_alike(client, ttl_policy_world):
    from actions.services.ttl import ttl_governing_action

    another_create("a_create_dev_env", extendBy="P1D")  # the blueprint's first policy by identifier
    entity = dev_environment(ttl_policy_world["dev"], "env-mine")  # created by a run of create_dev_env (extendBy P3D)
    run = Run.objects.get(result_entity=entity)
    assert ttl_governing_action(blueprint_identifier="devEnvironment", creating_run=run) == ttl_policy_world["actions"]["create"]
    assert ttl_governing_action(blueprint_identifier="devEnvironment").identifier == "a_create_dev_env"
    assert ttl_governing_action(blueprint_identifier="devEnvironment", creating_run=run,
                                property="expires") is None  # not the timer its policy governs
    (row,) = rows(client, ttl_policy_world["dev"])
    assert ">Extend by 3d</button>" in row
    assert ttl_extend(actor=Actor(user=ttl_policy_world["dev"]), entity=entity)["extendBy"] == "P3D"
