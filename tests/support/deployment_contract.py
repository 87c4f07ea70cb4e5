"""The starter deployment blueprints' contract as the deployment tests use it (catalog/fixtures/starter-catalog.json
holds the full ones): Component, environment, runningService and deployment, with no entities."""
from catalog.models import Blueprint
from tests.factories import BlueprintFactory

LOCK_PROPERTIES = {
    "locked": {"type": "boolean", "default": False},
    "lockReason": {"type": "string"},
    "lockedBy": {"type": "string"},
    "lockedAt": {"type": "string", "format": "date-time"},
    "lockedUntil": {"type": "string", "format": "date-time"},
}
MIRRORS = {"environmentType": {"path": "environment.type"}, "environmentLocked": {"path": "environment.locked"},
           "serviceTitle": {"path": "service.$title"}}


def deployment_blueprints_install(actor, *, mirrors=False):
    """{identifier: Blueprint} of every blueprint once the four are created; `mirrors` adds the running service's
    mirror properties."""
    BlueprintFactory(actor=actor, identifier="Component", title="Component", schema={"properties": {}})
    BlueprintFactory(actor=actor, identifier="environment", title="Environment", schema={"properties": {
        "type": {"type": "string", "enum": ["production", "staging", "development"]}, **LOCK_PROPERTIES}})
    BlueprintFactory(actor=actor, **{
        "identifier": "runningService", "title": "Running service",
        "schema": {"properties": {
            "version": {"type": "string"}, "commitSha": {"type": "string"}, "jobUrl": {"type": "string", "format": "url"},
            "deployedBy": {"type": "string"}, "deployedAt": {"type": "string", "format": "date-time"},
            "health": {"type": "string", "enum": ["healthy", "degraded", "down", "unknown"]}, **LOCK_PROPERTIES}},
        "relations": {"service": {"target": "Component", "required": True, "many": False},
                      "environment": {"target": "environment", "required": True, "many": False}},
        **({"mirrorProperties": MIRRORS} if mirrors else {}),
    })
    BlueprintFactory(actor=actor, **{
        "identifier": "deployment", "title": "Deployment",
        "schema": {"properties": {
            "version": {"type": "string"}, "commitSha": {"type": "string"}, "commitTime": {"type": "string", "format": "date-time"},
            "jobUrl": {"type": "string", "format": "url"}, "status": {"type": "string", "enum": ["success", "failure"]},
            "deployedBy": {"type": "string"}, "startedAt": {"type": "string", "format": "date-time"},
            "finishedAt": {"type": "string", "format": "date-time"}}},
        "relations": {"runningService": {"target": "runningService", "required": True, "many": False}},
    })
    return {b.identifier: b for b in Blueprint.objects.all()}
