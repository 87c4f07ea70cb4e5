"""portal/outbox_publisher.py: a web process publishes its committed outbox messages from a thread of its own, so the
request answers without waiting on the broker; everywhere else the committing thread publishes them."""
import logging
import queue
import threading

import pytest
from celery import shared_task
from django.db import transaction

import portal.outbox
import portal.outbox_publisher as publisher
from portal.models import OutboxMessage
from portal.outbox import outbox_enqueue


@shared_task(name="tests.outbox_publisher_noted")
def noted_task(*args):
    return args


@pytest.fixture
def started(settings, monkeypatch):
    """This process publishes from its thread, as a web process does (portal/wsgi.py); Celery not eager."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setattr(publisher, "_started", True)
    yield
    publisher.outbox_publisher_stop()


def recording(monkeypatch, *, hold=None, fail_first=False):
    """outbox_publish_many replaced: each call recorded as (the messages' first args, thread name, options)."""
    calls = []

    def publish(messages, **options):
        if hold is not None:
            assert hold.wait(10)
        calls.append(([message.args[0] for message in messages], threading.current_thread().name, options))
        if fail_first and len(calls) == 1:
            raise RuntimeError("the broker exploded")
        return len(messages)

    monkeypatch.setattr(portal.outbox, "outbox_publish_many", publish)
    return calls


def commit(*names, capture):
    with capture(execute=True), transaction.atomic():
        for name in names:
            outbox_enqueue(noted_task, [name])


def test_the_commit_hands_its_messages_to_the_thread_and_goes_on(db, started, monkeypatch,
                                                                 django_capture_on_commit_callbacks):
    release = threading.Event()
    calls = recording(monkeypatch, hold=release)
    commit("first", "second", capture=django_capture_on_commit_callbacks)
    assert calls == []  # the hook returned while the thread still holds them
    assert OutboxMessage.objects.filter(published_at__isnull=False).count() == 2  # written published: never lost
    release.set()
    publisher.outbox_publisher_stop()  # joins once it has published what was handed before
    assert calls == [(["first", "second"], "outbox-publisher", {"stamped": True, "grouped": True})]


def test_a_failed_publish_is_logged_and_the_thread_goes_on(db, started, monkeypatch, caplog,
                                                           django_capture_on_commit_callbacks):
    calls = recording(monkeypatch, fail_first=True)
    with caplog.at_level(logging.ERROR, logger="portal.outbox_publisher"):
        commit("first", capture=django_capture_on_commit_callbacks)
        commit("second", capture=django_capture_on_commit_callbacks)
        publisher.outbox_publisher_stop()
    assert [names for names, _, _ in calls] == [["first"], ["second"]]
    assert "the sweep publishes them" in caplog.text


@pytest.mark.parametrize("why", ["not a web process", "eager"])
def test_elsewhere_the_committing_thread_publishes(db, settings, monkeypatch, why, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = why == "eager"
    monkeypatch.setattr(publisher, "_started", why == "eager")
    calls = recording(monkeypatch)
    commit("now", capture=django_capture_on_commit_callbacks)
    assert calls == [(["now"], threading.current_thread().name, {"stamped": True, "grouped": True})]
    assert publisher._state["thread"] is None


def test_a_forked_process_makes_a_thread_of_its_own(started, monkeypatch):
    parent_queue, parent_thread = publisher._handed_queue(), publisher._state["thread"]
    assert publisher._handed_queue() is parent_queue  # one per process
    monkeypatch.setattr(publisher.os, "getpid", lambda: -1)  # as a gunicorn worker forked from its master
    child_queue = publisher._handed_queue()
    assert child_queue is not parent_queue and publisher._state["thread"] is not parent_thread
    assert publisher._state["thread"].is_alive()
    parent_queue.put(None)
    parent_thread.join(5)
    assert not parent_thread.is_alive()


def test_at_exit_what_was_handed_and_not_taken_is_published(monkeypatch):
    calls = recording(monkeypatch)
    handed = queue.SimpleQueue()
    for name in ("a", "b"):
        handed.put([OutboxMessage(task=noted_task.name, args=[name])])
    publisher._drain(handed)
    assert [names for names, _, _ in calls] == [["a"], ["b"]] and handed.empty()


def test_the_thread_sends_to_a_live_broker(db, started, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.CELERY_BROKER_URL = settings.REDIS_URL.replace("unix://", "redis+socket://")
    send, sent = portal.outbox._send, []

    def recorded(connection, message, countdown, carried=()):
        send(connection, message, countdown, carried)  # raises if the broker did not take it
        sent.append((message.args, carried, threading.current_thread().name))

    monkeypatch.setattr(portal.outbox, "_send", recorded)
    commit("one", "two", capture=django_capture_on_commit_callbacks)
    publisher.outbox_publisher_stop()
    assert len(sent) == 1 and sent[0][0] == ["one"] and len(sent[0][1]) == 1  # one broker message carries both
    assert sent[0][2] == "outbox-publisher"
    assert not OutboxMessage.objects.filter(published_at__isnull=True).exists()  # none unmarked as refused


@pytest.mark.django_db(transaction=True)
def test_what_a_dead_broker_refused_the_thread_leaves_unmarked_for_the_sweep(started, settings):
    """The thread's own database connection unmarks the refused messages (then closes), as the request did."""
    from tests.portal.processes import free_port

    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    portal.outbox._broker_down_until.clear()
    with transaction.atomic():
        outbox_enqueue(noted_task, ["refused"])
    publisher.outbox_publisher_stop()
    message = OutboxMessage.objects.get(args=["refused"])
    assert message.published_at is None and message.done_at is None  # pending: the sweep publishes it
    portal.outbox._broker_down_until.clear()
