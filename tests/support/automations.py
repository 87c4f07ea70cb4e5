"""A blueprint with timers (devEnv) and automations on it, for the automation, timer and TTL tests."""
from actions.services.actions import action_create
from portal.actor import Actor
from tests.factories import BlueprintFactory

SYSTEM = Actor.system()


ENV = {
    "identifier": "devEnv",
    "title": "Developer environment",
    "schema": {"properties": {"tier": {"type": "string"}, "n": {"type": "number"},
                              "ttl": {"type": "string", "format": "timer"},
                              "certExpiry": {"type": "string", "format": "timer"}}},
}


def env_setup():
    return BlueprintFactory(**ENV)


def automation(identifier, event, *, condition=None, invocation=None):
    data = {"identifier": identifier, "title": identifier,
            "trigger": {"type": "automation", "event": event},
            "invocationMethod": invocation or {"type": "WEBHOOK", "url": "http://127.0.0.1:9/hook"}}
    if condition is not None:
        data["trigger"]["condition"] = condition
    return action_create(actor=SYSTEM, data=data)
