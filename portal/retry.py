"""`retry_on_conflict`: run a service's transaction again when PostgreSQL aborted it to break a deadlock
(40P01) or a serialization failure (40001).

The lock order of the writers (catalog/services/entities.py) makes such aborts rare, not impossible (a
delete discovering new dependents, a writer outside that order); the transaction holds no partial state
after the abort, so running the whole service again is safe. Only the outermost transaction can be retried:
inside an atomic block the caller's transaction is already aborted, so a service called there runs once and
lets the error reach the boundary that retries. After the last attempt the caller gets `Busy` (503 with
Retry-After)."""
import functools
import logging
import random
import time

from django.db import connection

from portal.errors import Busy

logger = logging.getLogger(__name__)
ATTEMPTS = 5
BACKOFF_SECONDS = 0.02  # doubled per attempt, jittered: 20, 40, 80, 160 ms on average
BUSY_MESSAGE = "The portal is busy with concurrent changes to the same items; try again shortly."
RETRIED_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure


def is_conflict(exc):
    """Whether `exc` (psycopg's error, or Django's wrapper of it) is a deadlock or serialization failure."""
    while exc is not None:
        if getattr(exc, "sqlstate", None) in RETRIED_SQLSTATES:
            return True
        exc = exc.__cause__
    return False


def retry_on_conflict(function):
    """Decorate a service (or an entry point) whose call is one transaction: retried up to ATTEMPTS times."""

    @functools.wraps(function)
    def retrying(*args, **kwargs):
        if connection.in_atomic_block:  # not the boundary: the outer transaction's owner retries
            return function(*args, **kwargs)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return function(*args, **kwargs)
            except Exception as exc:
                if not is_conflict(exc):
                    raise
                if attempt == ATTEMPTS:
                    logger.warning("%s lost to concurrent writers %d times: %s", function.__qualname__, attempt, exc)
                    raise Busy(BUSY_MESSAGE) from exc
                logger.info("%s retried after %s (attempt %d)", function.__qualname__, type(exc).__name__, attempt)
                time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))

    return retrying
