"""What goes to the change log (portal/changelog.py): entity and run changes whose blueprint, or the whole
organization (PATCH /v1/organization `changelogDestination`), has a `changelogDestination` of type KAFKA.

Subscribed to ENTITY_CHANGED and RUN_CHANGED (portal.events), so each message is written in the transaction of
the change it describes. An entity change carries its blueprint's destination; the organization's (and, for runs,
the blueprints') are read at most every ROUTES_SECONDS per process, so writes pay no query for them. The message is Port's change event: `{action, resourceType, status, trigger {by, origin,
at}, context, diff {before, after}, changelogDestination}`; its key is `<blueprint>/<entity>` for an entity and the
run id for a run, so one partition holds one entity's (or run's) changes in order.
"""
import threading
import time

from django.utils import timezone

from catalog.models import Blueprint
from portal.changelog import changelog_enqueue
from portal.datetimes import instant_text
from portal.organization import organization_changelog_destination

ROUTES_SECONDS = 10.0
_routes = {}  # {"until": monotonic deadline, "organization": destination, "blueprints": {identifier: destination}}
_routes_lock = threading.Lock()


def _kafka(destination):
    return isinstance(destination, dict) and str(destination.get("type", "")).upper() == "KAFKA"


def changelog_routes_forget() -> None:
    """Read the destinations afresh at the next change (the organization's settings changed in this process)."""
    with _routes_lock:
        _routes.clear()


def _current_routes() -> dict:
    """The organization's destination and the blueprints' KAFKA destinations, read at most every ROUTES_SECONDS per
    process: every entity and run write asks, and they must not pay queries for it (a destination set on another
    process applies here within ROUTES_SECONDS; an entity change carries its blueprint's own, always current)."""
    with _routes_lock:
        if _routes.get("until", 0.0) > time.monotonic():
            return dict(_routes)
    routes = {"organization": organization_changelog_destination(),
              "blueprints": {identifier: destination for identifier, destination in Blueprint.objects.exclude(
                  changelog_destination=None).values_list("identifier", "changelog_destination") if _kafka(destination)}}
    with _routes_lock:
        _routes.update(routes, until=time.monotonic() + ROUTES_SECONDS)
    return routes


def _destination(own, routes):
    """The KAFKA destination that applies (the blueprint's own, else the organization's), or None."""
    if _kafka(own):
        return own
    return routes["organization"] if _kafka(routes["organization"]) else None


def _event(*, action, resource_type, by, origin, context, before, after, destination):
    return {"action": action, "resourceType": resource_type, "status": "TRIGGERED",
            "trigger": {"by": {"userId": by}, "origin": origin, "at": instant_text(timezone.now())},
            "context": context, "diff": {"before": before, "after": after}, "changelogDestination": destination}


def entity_changes_log(changes):
    """ENTITY_CHANGED subscriber: one message per change of an entity whose blueprint (or organization) publishes."""
    routes = _current_routes()
    messages = []
    for change in changes:
        destination = _destination(change.get("changelogDestination"), routes)
        if destination is not None:
            messages.append((f"{change['blueprint']}/{change['identifier']}", _event(
                action=change["action"], resource_type="entity", by=change.get("by"), origin=change.get("origin"),
                context={"blueprintIdentifier": change["blueprint"], "entityIdentifier": change["identifier"],
                         "runId": change.get("runId")},
                before=change.get("before"), after=change.get("after"), destination=destination)))
    changelog_enqueue(messages)


def run_changes_log(event):
    """RUN_CHANGED subscriber: one message per change of a run whose blueprint (or organization) publishes."""
    after = event["after"]
    blueprint = (after.get("blueprint") or {}).get("identifier") or ""
    routes = _current_routes()
    destination = _destination(routes["blueprints"].get(blueprint), routes)
    if destination is None:
        return
    changelog_enqueue([(event["runId"], _event(
        action=event["action"], resource_type="run", by=after.get("createdBy"), origin=after.get("source"),
        context={"blueprintIdentifier": blueprint or None, "runId": event["runId"],
                 "actionIdentifier": event["actionIdentifier"]},
        before=event.get("before"), after=after, destination=destination))])
