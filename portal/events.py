"""The explicit event hook between apps: `catalog` announces, `actions` subscribes.

A writer announces inside its transaction. Subscribers registered `in_transaction` run then: they queue work
(outbox rows, portal/outbox.py) in the writer's transaction, so the work exists exactly when the change does,
and their error fails the write rather than losing the work. The others run after commit, in this process,
and only see committed changes; their failure is logged and does not undo the change.
"""
import logging
from collections import defaultdict

from django.db import transaction

logger = logging.getLogger(__name__)
_subscribers = defaultdict(list)  # after commit
_in_transaction = defaultdict(list)

ENTITY_CHANGED = "entity.changed"
# {"action": "CREATE"|"UPDATE", "runId", "actionIdentifier", "before": run snapshot (None on CREATE), "after": run JSON}
RUN_CHANGED = "run.changed"


def subscribe(kind, callback, *, in_transaction=False):
    subscribers = (_in_transaction if in_transaction else _subscribers)[kind]
    if callback not in subscribers:
        subscribers.append(callback)


def announce(kind, event):
    """Called by the writer inside its transaction (see the module's docstring)."""
    for callback in list(_in_transaction[kind]):
        callback(event)
    if _subscribers[kind]:
        transaction.on_commit(lambda: _announce_committed(kind, event))


def _announce_committed(kind, event):
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
