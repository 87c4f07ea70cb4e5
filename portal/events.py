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


# The run_id link: the catalog writes entities "for a run" without knowing what a run is. The actions app
# registers the check (the run exists and is in progress); with none registered every run_id passes.
_run_reference_checks = []


def register_run_reference_check(check):
    """`check(run_id)` returns None or raises (ValidationFailed) to refuse a write naming that run."""
    if check not in _run_reference_checks:
        _run_reference_checks.append(check)


def run_reference_check(run_id) -> None:
    for check in list(_run_reference_checks):
        check(run_id)
