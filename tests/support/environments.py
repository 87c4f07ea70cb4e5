"""Developer environments with a TTL: the devEnvironment blueprint and its actions (`ttl_world`) and environments
created by a run (`dev_environment`)."""
from datetime import timedelta

from django.utils import timezone

from actions.choices import RunStatus
from actions.models import Action
from actions.services.actions import action_create, action_permissions_update
from catalog.models import Entity
from portal.actor import Actor
from portal.datetimes import instant_text
from tests.factories import BlueprintFactory, EntityFactory, RunFactory

SYSTEM = Actor.system()


DEV_ENV = {"identifier": "devEnvironment", "title": "Developer environment", "schema": {"properties": {
    "branch": {"type": "string"}, "url": {"type": "string", "format": "url"}, "ttl": {"type": "string", "format": "timer"}}}}

CREATE = {
    "identifier": "create_dev_env", "title": "Spin up a developer environment",
    "trigger": {"type": "self-service", "operation": "CREATE", "blueprintIdentifier": "devEnvironment",
                "userInputs": {"properties": {"branch": {"type": "string"}}, "required": ["branch"]}},
    "invocationMethod": {"type": "WEBHOOK", "url": "http://127.0.0.1:9/hook"},
    "ttl": {"property": "ttl", "default": "P5D", "maximum": "P14D", "extendBy": "P3D"},
}

TERMINATE = {
    "identifier": "terminate_dev_env", "title": "Terminate environment",
    "trigger": {"type": "self-service", "operation": "DELETE", "blueprintIdentifier": "devEnvironment",
                "userInputs": {"properties": {}, "required": []}},
    "invocationMethod": {"type": "WEBHOOK", "url": "http://127.0.0.1:9/hook"},
}


def ttl_world(*, terminate=True):
    """The devEnvironment blueprint, its CREATE action with a TTL policy (5 days, at most 14, +3 per extension)
    and, with `terminate`, its DELETE action; members may run both."""
    BlueprintFactory(**DEV_ENV)
    create = action_create(actor=SYSTEM, data=CREATE)
    action_permissions_update(actor=SYSTEM, action=create, data={"execute": {"roles": ["Member"]}})
    actions = {"create": create}
    if terminate:
        actions["terminate"] = action_create(actor=SYSTEM, data=TERMINATE)
        action_permissions_update(actor=SYSTEM, action=actions["terminate"], data={"execute": {"roles": ["Member"]}})
    return actions


def dev_environment(owner, identifier, *, expires_in=timedelta(days=5), url="https://env.example.com", created_ago=None):
    """A devEnvironment created by a run of create_dev_env that `owner` requested, expiring in `expires_in`."""
    properties = {"branch": "main", "ttl": instant_text(timezone.now() + expires_in)}
    if url:
        properties["url"] = url
    entity = EntityFactory(blueprint="devEnvironment", identifier=identifier, title=f"Env {identifier}",
                           properties=properties)
    if created_ago is not None:
        Entity.objects.filter(pk=entity.pk).update(created_at=timezone.now() - created_ago)
        entity.refresh_from_db()
    RunFactory(id=f"r_{identifier}", action=Action.objects.get(identifier="create_dev_env"),
                       blueprint_identifier="devEnvironment", result_entity=entity, requested_by=owner,
                       status=RunStatus.SUCCESS, properties={"branch": "main"})
    return entity
