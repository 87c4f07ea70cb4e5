"""The explicit event hook between apps: `catalog` announces, `actions` subscribes.

Announcements are made from `transaction.on_commit`, so subscribers only see committed changes.
"""
import logging
from collections import defaultdict

logger = logging.getLogger(__name__)
_subscribers = defaultdict(list)

ENTITY_CHANGED = "entity.changed"


def subscribe(kind, callback):
    if callback not in _subscribers[kind]:
        _subscribers[kind].append(callback)


def announce(kind, event):
    for callback in list(_subscribers[kind]):
        try:
            callback(event)
        except Exception:  # one subscriber's failure must not undo a committed change
            logger.exception("subscriber %s failed for %s", callback, kind)
