"""Where a committed transaction's outbox messages are published: in a web process, by a thread of its own.

A web process (portal/wsgi.py calls `outbox_publisher_start`) hands each committed transaction's messages to its
publishing thread and answers at once: a CI deployment report, an upsert that queues an automation, a run request
no longer wait for Celery to build and send the broker message (0.7 ms of a 8 ms report), nor for the broker's
connect timeout when it is down. The thread publishes them in the order handed, as `outbox_publish_many` does
in the request (grouped, fail-fast, what the broker did not take unmarked for the sweep). The messages were written
published (`outbox_enqueue`), so nothing is lost when the process dies before its thread sent them: beat's sweep
publishes them again OUTBOX_REPUBLISH_SECONDS after they were due, and the claim keeps a message from running twice.
A process that exits normally publishes what is still handed first (atexit, bounded by the broker's fail-fast
timeouts).

Everywhere else (Celery workers, commands, tests, Celery's eager mode) the committing thread publishes them itself.
"""
import atexit
import logging
import os
import queue
import threading

from django.db import connection

logger = logging.getLogger(__name__)
_started = False
_lock = threading.Lock()
_state = {"pid": None, "queue": None, "thread": None}  # this process's thread (a forked child makes its own)


def outbox_publisher_start():
    """Publish this process's committed messages from a thread of its own (made on first use, after any fork)."""
    global _started
    _started = True


def outbox_publish_committed(messages):
    """The after-commit hook's publish of one transaction's `messages` (written published): handed to this process's
    publishing thread when it has one, else published now."""
    from portal.celery import app

    if not _started or app.conf.task_always_eager:
        _publish(messages)
        return
    _handed_queue().put(messages)


def _handed_queue():
    with _lock:
        if _state["pid"] != os.getpid():
            handed = queue.SimpleQueue()
            thread = threading.Thread(target=_run, args=(handed,), name="outbox-publisher", daemon=True)
            _state.update(pid=os.getpid(), queue=handed, thread=thread)
            thread.start()
            atexit.register(_drain, handed)
        return _state["queue"]


def _run(handed):
    while True:
        messages = handed.get()
        if messages is None:  # outbox_publisher_stop
            return
        _publish(messages)
        connection.close()  # the thread's own, opened only to unmark what the broker refused


def _publish(messages):
    from portal.outbox import outbox_publish_many

    try:
        outbox_publish_many(messages, stamped=True, grouped=True)
    except Exception:  # noqa: BLE001 - the thread must go on; what it did not publish the sweep publishes
        logger.exception("outbox: publishing %d committed message(s) failed; the sweep publishes them", len(messages))


def _drain(handed):
    """At exit: publish what was handed and not yet taken (the thread may be sending one batch meanwhile)."""
    while True:
        try:
            messages = handed.get_nowait()
        except queue.Empty:
            return
        if messages is not None:
            _publish(messages)


def outbox_publisher_stop(timeout=5.0):
    """Stop this process's thread once it has published what was handed before (tests); the next hand-off makes a
    new one."""
    with _lock:
        handed, thread = _state["queue"], _state["thread"]
        _state.update(pid=None, queue=None, thread=None)
    if thread is not None:
        handed.put(None)
        thread.join(timeout)
