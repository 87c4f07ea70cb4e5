"""The deployment catalog (`deploy_catalog`, `running_service`, `lock`) and lock actions of the starter's shape
(`lock_actions_install`: DAY-2, `reason` required, optional `until`, UPSERT_ENTITY setting
locked/lockReason/lockedBy/lockedAt), built here so the page tests do not depend on the starter fixture's details."""
from actions.services.actions import action_create, action_permissions_update
from catalog.models import Blueprint, Entity, Team
from catalog.services.entities import UPSERT_MERGE
from portal.actor import Actor
from tests.factories import EntityFactory, LockFactory, RunningServiceFactory, TeamFactory
from tests.support.deployment_contract import deployment_blueprints_install

SYSTEM = Actor.system()


def deploy_catalog():
    """Component, environment, runningService, deployment; environments production, staging, development."""
    blueprints = deployment_blueprints_install(SYSTEM)
    for name in ("production", "staging", "development"):
        EntityFactory(blueprint=blueprints["environment"], identifier=name, title=name.title(),
                      properties={"type": name, "locked": False})
    return blueprints


def running_service(service, environment, *, version="1.0.0", team=None, **properties):
    """The Component (if missing) and its running service `<service>-<environment>`."""
    blueprints = {b.identifier: b for b in Blueprint.objects.filter(identifier__in=["Component", "runningService"])}
    if team and not Team.objects.filter(name=team).exists():
        TeamFactory(name=team)
    if not Entity.objects.filter(blueprint=blueprints["Component"], identifier=service).exists():
        EntityFactory(blueprint=blueprints["Component"], identifier=service, title=service,
                      **({"team": [team]} if team else {}))
    return RunningServiceFactory(
        blueprint=blueprints["runningService"], mode=UPSERT_MERGE, service=service, environment=environment,
        **({"team": [team]} if team else {}),
        properties={"version": version, "commitSha": "abc1234def", "jobUrl": "https://ci.example.com/jobs/1",
                    "deployedBy": "ci@example.com", "deployedAt": "2025-01-01T10:00:00.000Z", **properties})


def lock_action(identifier, blueprint, *, lock):
    inputs = {"reason": {"type": "string", "title": "Reason", "maxLength": 500}}
    properties = {"locked": lock, "lockReason": "{{ .inputs.reason }}", "lockedBy": "{{ .trigger.by.user.email }}",
                  "lockedAt": "{{ .trigger.at }}"}
    if lock:
        inputs["until"] = {"type": "string", "format": "date-time", "title": "Unlock automatically at"}
    action = action_create(actor=SYSTEM, data={
        "identifier": identifier, "title": identifier.replace("_", " ").capitalize(),
        "trigger": {"type": "self-service", "operation": "DAY-2", "blueprintIdentifier": blueprint,
                    "userInputs": {"properties": inputs, "required": ["reason"]}},
        "invocationMethod": {"type": "UPSERT_ENTITY", "blueprintIdentifier": blueprint,
                             "mapping": {"identifier": "{{ .entity.identifier }}", "properties": properties}},
    })
    action_permissions_update(actor=SYSTEM, action=action, data={"execute": {"roles": ["Member"]}})
    return action


def lock_actions_install():
    return {identifier: lock_action(identifier, blueprint, lock=identifier.startswith("lock"))
            for identifier, blueprint in (("lock_service", "runningService"), ("unlock_service", "runningService"),
                                          ("lock_environment", "environment"), ("unlock_environment", "environment"))}


def lock(blueprint, identifier, reason="release freeze", by="sre@example.com", until=None):
    LockFactory(blueprint=blueprint, identifier=identifier, reason=reason, by=by, until=until)
