"""The explicit event hook between apps: `catalog` announces, `actions` subscribes.

Announcements are made from `transaction.on_commit`, so subscribers only see committed changes.
"""
import logging
from collections import defaultdict

logger = logging.getLogger(__name__)
_subscribers = defaultdict(list)

ENTITY_CHANGED = "entity.changed"
# {"action": "CREATE"|"UPDATE", "runId", "actionIdentifier", "before": run snapshot (None on CREATE), "after": run JSON}
RUN_CHANGED = "run.changed"


def subscribe(kind, callback):
    if callback not in _subscribers[kind]:
        _subscribers[kind].append(callback)


def announce(kind, event):
    for callback in list(_subscribers[kind]):
        try:
            callback(event)
        except Exception:  # one subscriber's failure must not undo a committed change
            logger.exception("subscriber %s failed for %s", callback, kind)


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
