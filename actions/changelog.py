"""What goes to the change log (portal/changelog.py): entity and run changes whose blueprint, or the whole
organization (PATCH /v1/organization `changelogDestination`), has a `changelogDestination` of type KAFKA.

Subscribed to ENTITY_CHANGED and RUN_CHANGED (portal.events), so each message is written in the transaction of
the change it describes. The message is Port's change event: `{action, resourceType, status, trigger {by, origin,
at}, context, diff {before, after}, changelogDestination}`; its key is `<blueprint>/<entity>` for an entity and the
run id for a run, so one partition holds one entity's (or run's) changes in order.
"""
from django.utils import timezone

from catalog.models import Blueprint
from portal.changelog import changelog_enqueue
from portal.datetimes import instant_text
from portal.organization import organization_changelog_destination


def _kafka(destination):
    return isinstance(destination, dict) and str(destination.get("type", "")).upper() == "KAFKA"


def _destinations(blueprint_identifiers) -> dict:
    """{blueprint identifier: its KAFKA destination} for those that publish (the organization's applies to all)."""
    organization = organization_changelog_destination()
    own = dict(Blueprint.objects.filter(identifier__in=set(blueprint_identifiers))
               .values_list("identifier", "changelog_destination"))
    chosen = {}
    for identifier in blueprint_identifiers:
        destination = own.get(identifier) if _kafka(own.get(identifier)) else organization
        if _kafka(destination):
            chosen[identifier] = destination
    return chosen


def _event(*, action, resource_type, by, origin, context, before, after, destination):
    return {"action": action, "resourceType": resource_type, "status": "TRIGGERED",
            "trigger": {"by": {"userId": by}, "origin": origin, "at": instant_text(timezone.now())},
            "context": context, "diff": {"before": before, "after": after}, "changelogDestination": destination}


def entity_changes_log(changes):
    """ENTITY_CHANGED subscriber: one message per change of an entity whose blueprint publishes its changes."""
    destinations = _destinations([change["blueprint"] for change in changes])
    changelog_enqueue([
        (f"{change['blueprint']}/{change['identifier']}", _event(
            action=change["action"], resource_type="entity", by=change.get("by"), origin=change.get("origin"),
            context={"blueprintIdentifier": change["blueprint"], "entityIdentifier": change["identifier"],
                     "runId": change.get("runId")},
            before=change.get("before"), after=change.get("after"), destination=destinations[change["blueprint"]]))
        for change in changes if change["blueprint"] in destinations])


def run_changes_log(event):
    """RUN_CHANGED subscriber: one message per change of a run whose blueprint (or organization) publishes."""
    after = event["after"]
    blueprint = (after.get("blueprint") or {}).get("identifier") or ""
    destination = _destinations([blueprint]).get(blueprint)
    if destination is None:
        return
    changelog_enqueue([(event["runId"], _event(
        action=event["action"], resource_type="run", by=after.get("createdBy"), origin=after.get("source"),
        context={"blueprintIdentifier": blueprint or None, "runId": event["runId"],
                 "actionIdentifier": event["actionIdentifier"]},
        before=event.get("before"), after=after, destination=destination))])
