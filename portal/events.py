"""The explicit event hook between apps: `catalog` announces, `actions` subscribes.

One mechanism: a writer announces inside its transaction and every subscriber runs then, in that transaction.
A subscriber either does its part of the change there (linking a run to the entity it wrote, starting the
entity's TTL) or queues the slow or external work as an outbox row (portal/outbox.py: Celery tasks, delivered
after commit by a worker, re-delivered by beat, failures kept on the row and shown in its admin). Either way
the work exists exactly when the change does, and a subscriber's error fails the write (its envelope is the
answer) rather than being logged and lost. Nothing runs after commit here.
"""
from collections import defaultdict

_subscribers = defaultdict(list)

# [{"action", "blueprint", "identifier", "before", "after", "by", "origin", "runId", "changelogDestination" (the
# blueprint's)}]
ENTITY_CHANGED = "entity.changed"
# {"action": "CREATE"|"UPDATE", "runId", "actionIdentifier", "before": run snapshot (None on CREATE), "after": run JSON}
RUN_CHANGED = "run.changed"


def subscribe(kind, callback):
    if callback not in _subscribers[kind]:
        _subscribers[kind].append(callback)


def announce(kind, event):
    """Called by the writer inside its transaction: run every subscriber of `kind` there; an error propagates."""
    for callback in list(_subscribers[kind]):
        callback(event)


# Checks are the synchronous half: the catalog asks, inside its transaction, whether another app objects
# to a write, without knowing that app. A check returns None or raises (a PortalError) to refuse.
# With none registered, nothing is refused.
RUN_REFERENCE = "run.reference"  # check(run_id): an entity write names this run (actions: it is in progress)
BLUEPRINT_DELETE = "blueprint.delete"  # check(identifier): actions refuse while actions use the blueprint
_checks = defaultdict(list)


def register_check(kind, check):
    if check not in _checks[kind]:
        _checks[kind].append(check)


def run_checks(kind, *args) -> None:
    for check in list(_checks[kind]):
        check(*args)
