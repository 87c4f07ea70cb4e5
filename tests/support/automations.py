"""A blueprint with timers (devEnv) and automations on it, for the automation, timer and TTL tests."""
from actions.services.actions import action_create
from catalog.models import Blueprint
from catalog.services.blueprints import blueprint_create
from portal.actor import Actor

SYSTEM = Actor.system()


ENV = {
    "identifier": "devEnv",
    "title": "Developer environment",
    "schema": {"properties": {"tier": {"type": "string"}, "n": {"type": "number"},
                              "ttl": {"type": "string", "format": "timer"},
                              "certExpiry": {"type": "string", "format": "timer"}}},
}


def env_setup():
    blueprint_create(actor=SYSTEM, data=ENV)
    return Blueprint.objects.get(identifier="devEnv")


def automation(identifier, event, *, condition=None, invocation=None):
    data = {"identifier": identifier, "title": identifier,
            "trigger": {"type": "automation", "event": event},
            "invocationMethod": invocation or {"type": "WEBHOOK", "url": "http://127.0.0.1:9/hook"}}
    if condition is not None:
        data["trigger"]["condition"] = condition
    return action_create(actor=SYSTEM, data=data)
