"""A whole Port action definition (DEV_ENV, DAY2) on blueprints Service and Environment, and edits of it."""
import copy

from tests.factories import BlueprintFactory


SERVICE = {"identifier": "Service", "title": "Service",
           "schema": {"properties": {"tier": {"type": "string"}, "language": {"type": "string"}}}}

ENVIRONMENT = {"identifier": "Environment", "title": "Environment",
               "schema": {"properties": {"branch": {"type": "string"}, "expiresAt": {"type": "string", "format": "timer"},
                                         "createdOn": {"type": "string", "format": "date-time"}}},
               "relations": {"service": {"target": "Service"}}}

DEV_ENV = {
    "identifier": "spin_up_dev_env",
    "title": "Spin up a developer environment",
    "icon": "Environment",
    "description": "A short-lived environment of one service, torn down after its TTL.",
    "trigger": {
        "type": "self-service",
        "operation": "CREATE",
        "blueprintIdentifier": "Environment",
        "userInputs": {
            "properties": {
                "branch": {"type": "string", "title": "Branch", "pattern": "^[a-z0-9][a-z0-9/_-]*$", "default": "main"},
                "size": {"type": "string", "enum": ["small", "medium", "large"], "default": "small",
                         "enumColors": {"small": "green", "large": "red"}},
                "owner": {"type": "string", "format": "user", "title": "Owner"},
                "service": {"type": "string", "format": "entity", "blueprint": "Service",
                            "dataset": {"combinator": "and", "rules": [{"property": "tier", "operator": "=", "value": "web"}]}},
            },
            "required": ["branch", "service"],
            "order": ["service", "branch", "size", "owner"],
        },
    },
    "invocationMethod": {
        "type": "WEBHOOK",
        "url": "https://hooks.example.com/environments",
        "method": "POST",
        "headers": {"X-Run": "{{ .run.id }}"},
        "body": {"branch": "{{ .inputs.branch }}", "who": "{{ .trigger.by.user.email }}",
                 "{{ spreadValue() }}": "{{ .inputs | {size} }}"},
    },
    "requiredApproval": {"type": "ANY"},
    "approvalTimeout": "P1D",
    "quota": {"liveEntitiesPerUser": 2, "perUser": {"limit": 3, "period": "day"}},
    "ttl": {"property": "expiresAt", "default": "P5D", "maximum": "P14D", "extendBy": "P3D"},
}


def catalog_setup():
    BlueprintFactory(**SERVICE)
    BlueprintFactory(**ENVIRONMENT)


def with_change(change):
    data = copy.deepcopy(DEV_ENV)
    change(data)
    return data


def _set(path, value):
    def change(data):
        *parents, last = path
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    return change


INPUTS = ("trigger", "userInputs", "properties")

DAY2 = {
    "identifier": "scale",
    "title": "Scale",
    "trigger": {"type": "self-service", "operation": "DAY-2", "blueprintIdentifier": "Service",
                "condition": {"combinator": "and", "rules": [{"property": "tier", "operator": "=", "value": "web"}]},
                "userInputs": {"properties": {"replicas": {"type": "number", "minimum": 1, "maximum": 10}}}},
    "invocationMethod": {"type": "GITHUB", "org": "acme", "repo": "infra", "workflow": "scale.yml",
                         "workflowInputs": {"replicas": "{{ .inputs.replicas }}"}},
}
