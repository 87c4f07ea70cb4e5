"""The transactional outbox (portal/outbox.py): rows in the caller's transaction, an exclusive claim, backoff,
the sweep, the purge, and its read-only admin page."""
import threading
import time
from datetime import timedelta

import pytest
import redis
from celery import shared_task
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import portal.celery
import portal.outbox
from portal.models import OutboxMessage
from portal.outbox import (outbox_backoff_seconds, outbox_claim, outbox_deliver, outbox_enqueue, outbox_publish_many,
                           outbox_purge, outbox_sweep)
from tests.factories import UserFactory
from tests.portal.processes import free_port

CALLS = []


@shared_task(name="tests.outbox_record")
def record_task(*args):
    CALLS.append(list(args))


@shared_task(name="tests.outbox_fail")
def fail_task(reason):
    raise RuntimeError(reason)


@shared_task(name="tests.outbox_chain")
def chain_task(step):
    CALLS.append(step)
    if step < 3:
        outbox_enqueue(chain_task, [step + 1])


@pytest.fixture(autouse=True)
def calls():
    CALLS.clear()
    yield CALLS
    CALLS.clear()


@pytest.fixture
def dead_broker(settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    return settings.CELERY_BROKER_URL


def pending():
    return OutboxMessage.objects.filter(done_at__isnull=True, failed_at__isnull=True)


@pytest.mark.django_db(transaction=True)
def test_the_row_is_written_in_the_callers_transaction_and_rolled_back_with_it(dead_broker):
    with transaction.atomic():
        message = outbox_enqueue(record_task, ["kept"], countdown=30)
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            outbox_enqueue(record_task, ["rolled back"])
            1 / 0
        assert OutboxMessage.objects.filter(pk=message.pk).exists()  # visible inside, before commit
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        outbox_enqueue(record_task, ["rolled back too"])
        1 / 0
    assert [m.args for m in OutboxMessage.objects.all()] == [["kept"]]
    message.refresh_from_db()
    assert message.task == "tests.outbox_record" and message.attempts == 0 and message.published_at is None
    assert timedelta(seconds=25) < message.not_before - message.created_at <= timedelta(seconds=31)


def test_after_commit_it_is_published_and_run_once(db, settings, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the broker's delivery, in this process
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = outbox_enqueue(record_task, ["a", 1])
    assert CALLS == []  # nothing before the commit
    for callback in callbacks:
        callback()
    message.refresh_from_db()
    assert CALLS == [["a", 1]] and message.done_at is not None and message.attempts == 1
    assert outbox_deliver(message_id=message.pk) is False  # delivered again: the claim refuses, nothing runs
    assert CALLS == [["a", 1]]


def test_a_broker_down_is_logged_not_raised_and_the_sweep_publishes_later(db, settings, dead_broker, caplog,
                                                                          monkeypatch):
    message, second = outbox_enqueue(record_task, ["later"]), outbox_enqueue(record_task, ["later too"])
    assert outbox_publish_many([message], stamped=True) == 0  # what the commit's hook does
    message.refresh_from_db()
    assert message.published_at is None and "not published, it stays pending" in caplog.text
    connects = []
    monkeypatch.setattr(portal.celery.app, "connection_for_write", lambda **options: connects.append(options))
    assert outbox_publish_many([second], stamped=True) == 0 and connects == []  # the broker just failed: not tried
    second.refresh_from_db()  # again at once, and the message is left for the sweep
    assert second.published_at is None
    monkeypatch.undo()
    monkeypatch.setitem(portal.outbox._broker_down_until, dead_broker, 0.0)  # … until BROKER_DOWN_SECONDS passed
    assert outbox_sweep() == 0  # still down
    settings.CELERY_BROKER_URL = settings.REDIS_URL.replace("unix://", "redis+socket://")  # the broker is back
    assert outbox_sweep() == 2
    message.refresh_from_db()
    assert message.published_at is not None and message.done_at is None
    assert outbox_sweep() == 0  # published and not yet due for re-publishing


@pytest.mark.django_db(transaction=True)
def test_of_two_concurrent_claimers_one_wins(dead_broker):
    """The second waits for the first's claim to commit, then finds the message held."""
    message = outbox_enqueue(record_task, ["once"])
    claimed = threading.Event()
    claims = []

    def first():
        try:
            with transaction.atomic():
                claims.append(outbox_claim(message_id=message.pk))
                claimed.set()
                time.sleep(0.3)  # the other claimer meanwhile asks for the same row
        finally:
            connection.close()

    def second():
        try:
            claimed.wait(10)
            claims.append(outbox_claim(message_id=message.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [claim is not None for claim in claims] == [True, False]
    message.refresh_from_db()
    assert message.attempts == 1 and message.lease_until > timezone.now()
    assert outbox_deliver(message_id=message.pk) is False and CALLS == []  # held by the live lease


@pytest.mark.django_db(transaction=True)
def test_a_claim_waits_for_the_publishers_mark_instead_of_skipping_the_message(dead_broker):
    """The worker may take a message while the process that published it still marks it published (a row lock of
    a moment): the claim waits for that, not skip the message as if another worker held it (it was then run only
    when the sweep published it again, 30 s later)."""
    message = outbox_enqueue(record_task, ["now"])
    locked, results = threading.Event(), []

    def publisher_marking():
        try:
            with transaction.atomic():
                OutboxMessage.objects.filter(pk=message.pk).update(published_at=timezone.now())
                locked.set()
                time.sleep(0.3)
        finally:
            connection.close()

    thread = threading.Thread(target=publisher_marking)
    thread.start()
    try:
        assert locked.wait(10)
        results.append(outbox_deliver(message_id=message.pk))
    finally:
        thread.join()
    assert results == [True] and CALLS == [["now"]]
    message.refresh_from_db()
    assert message.done_at is not None and message.attempts == 1


def test_a_failing_task_backs_off_then_fails_with_its_error(db, settings, dead_broker, caplog):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    message = outbox_enqueue(fail_task, ["receiver down"])
    for attempt in (1, 2):
        assert outbox_deliver(message_id=message.pk) is True
        message.refresh_from_db()
        assert message.attempts == attempt and message.lease_until is None and message.failed_at is None
        assert message.last_error == "RuntimeError: receiver down"
        assert message.not_before > timezone.now() + timedelta(seconds=outbox_backoff_seconds(attempt) - 2)
        assert outbox_deliver(message_id=message.pk) is False  # not due before its backoff
        OutboxMessage.objects.filter(pk=message.pk).update(not_before=timezone.now())
    assert outbox_deliver(message_id=message.pk) is True
    message.refresh_from_db()
    assert message.attempts == 3 and message.failed_at is not None and message.done_at is None
    assert "failed after 3 attempts: RuntimeError: receiver down" in caplog.text
    assert outbox_deliver(message_id=message.pk) is False
    assert [outbox_backoff_seconds(n) for n in (1, 2, 3, 8, 9, 20)] == [2, 4, 8, 256, 300, 300]


def test_the_sweep_takes_back_a_dead_workers_message_and_fails_it_on_its_last_attempt(db, settings, dead_broker):
    settings.OUTBOX_MAX_ATTEMPTS = 2
    message = outbox_enqueue(record_task, ["x"])
    assert outbox_claim(message_id=message.pk) is not None  # … and the worker dies
    live = outbox_enqueue(record_task, ["held"])
    outbox_claim(message_id=live.pk)
    OutboxMessage.objects.filter(pk=message.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert outbox_deliver(message_id=message.pk) is True and CALLS == [["x"]]  # an expired lease is claimable
    message.refresh_from_db()
    assert message.attempts == 2 and message.done_at is not None

    last = outbox_enqueue(record_task, ["y"])
    outbox_claim(message_id=last.pk)
    outbox_claim(message_id=last.pk)
    OutboxMessage.objects.filter(pk=last.pk).update(attempts=2, lease_until=timezone.now() - timedelta(seconds=1))
    assert outbox_sweep() == 0  # the dead broker is not reached: the last attempt's expiry fails it first
    last.refresh_from_db()
    assert last.failed_at is not None and "lease expired on attempt 2" in last.last_error
    live.refresh_from_db()
    assert live.failed_at is None and live.lease_until > timezone.now()


def test_done_messages_are_purged_after_seven_days(db, dead_broker):
    old, recent, failed, waiting = (outbox_enqueue(record_task, [n]) for n in range(4))
    now = timezone.now()
    OutboxMessage.objects.filter(pk=old.pk).update(done_at=now - timedelta(days=7, minutes=1))
    OutboxMessage.objects.filter(pk=recent.pk).update(done_at=now - timedelta(days=6))
    OutboxMessage.objects.filter(pk=failed.pk).update(failed_at=now - timedelta(days=30))
    assert outbox_purge() == 1
    assert sorted(OutboxMessage.objects.values_list("pk", flat=True)) == sorted([recent.pk, failed.pk, waiting.pk])


def test_the_admin_lists_messages_read_only(db, client, dead_broker):
    message = outbox_enqueue(record_task, ["shown"])
    client.force_login(UserFactory(email="root@example.com", admin=True))
    listing = client.get("/admin/portal/outboxmessage/")
    assert listing.status_code == 200 and "tests.outbox_record" in listing.content.decode()
    detail = client.get(f"/admin/portal/outboxmessage/{message.pk}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content  # view only
    assert client.get("/admin/portal/outboxmessage/add/").status_code == 403
    assert client.post(f"/admin/portal/outboxmessage/{message.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/portal/outboxmessage/{message.pk}/change/", {"task": "x"}).status_code == 403
    assert pending().filter(pk=message.pk, task="tests.outbox_record").exists()


def test_beat_sweeps_every_five_seconds_and_purges_hourly(settings):
    from portal.celery import app

    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["portal.outbox_sweep"] == 5.0 and schedule["portal.outbox_purge"] == 3600.0
    assert schedule["actions.tasks.run_delivery_leases_task"] == 5.0
    assert "actions.tasks.run_redispatch_task" not in schedule  # the outbox re-delivers what was never dispatched
    app.loader.import_default_modules()
    assert {"portal.outbox_deliver", "portal.outbox_sweep", "portal.outbox_purge",
            "actions.tasks.run_delivery_leases_task"} <= set(app.tasks)


def test_a_thread_keeps_its_broker_connection_and_replaces_one_the_broker_dropped(db, settings, monkeypatch):
    settings.CELERY_BROKER_URL = settings.REDIS_URL.replace("unix://", "redis+socket://")  # a live broker, not eager
    real, connects = portal.celery.app.connection_for_write, []

    def counted(**options):
        if "transport_options" in options:  # the outbox's (Celery's own producer pool asks without)
            connects.append(options)
        return real(**options)

    monkeypatch.setattr(portal.celery.app, "connection_for_write", counted)
    broker = portal.celery.app.conf.broker_write_url or portal.celery.app.conf.broker_url
    portal.outbox._publisher_drop(broker)  # none kept from an earlier test in this thread
    first, second, third = (outbox_enqueue(record_task, [name]) for name in ("first", "second", "third"))
    assert outbox_publish_many([first], stamped=True) == 1 and outbox_publish_many([second], stamped=True) == 1
    assert len(connects) == 1  # one connection, its queue declared once, for both
    kept, send = portal.outbox._publishers.held[broker], portal.outbox._send

    def broken_once(connection, message, countdown, carried=()):  # what a broker restart leaves of a kept connection
        if connection is kept:
            raise redis.ConnectionError("Connection closed by server.")
        return send(connection, message, countdown, carried)

    monkeypatch.setattr(portal.outbox, "_send", broken_once)
    assert outbox_publish_many([third], stamped=True) == 1 and len(connects) == 2  # published on a new connection, not left pending
    assert portal.outbox._publishers.held[broker] is not kept
    for message in (first, second, third):  # none unmarked as refused
        message.refresh_from_db()
        assert message.published_at is not None
    portal.outbox._publisher_drop(broker)



def test_a_transactions_messages_are_published_together_after_its_commit(db, settings, monkeypatch,
                                                                         django_capture_on_commit_callbacks):
    """One hook per savepoint level: the messages of a transaction go to the broker in one publish, marked
    published in one statement; a savepoint rolled back takes its own messages' hook with it."""
    batches = []
    monkeypatch.setattr(portal.outbox, "outbox_publish_many",
                        lambda messages, **options: batches.append([m.args[0] for m in messages]) or len(messages))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            outbox_enqueue(record_task, ["first"])
            outbox_enqueue(record_task, ["second"], countdown=1)
            with transaction.atomic():
                outbox_enqueue(record_task, ["kept savepoint"])
            with pytest.raises(ZeroDivisionError), transaction.atomic():
                outbox_enqueue(record_task, ["rolled back"])
                1 / 0
            outbox_enqueue(record_task, ["third"])
    assert batches == [["first", "second", "third"], ["kept savepoint"]] and len(callbacks) == 2
    assert not OutboxMessage.objects.filter(args=["rolled back"]).exists()


def test_a_message_is_written_published_and_unmarked_when_the_broker_refuses_it(db, settings, dead_broker,
                                                                                django_assert_num_queries):
    """After the commit, no statement marks what the broker took (the row was written published); what it did not
    take is unmarked in one statement, for the sweep. The sweep's own publishes mark what they published."""
    settings.CELERY_BROKER_URL = settings.REDIS_URL.replace("unix://", "redis+socket://")  # a live broker, not eager
    messages = [outbox_enqueue(record_task, [name]) for name in ("a", "b", "c")]
    assert all(message.published_at is not None for message in messages)
    with django_assert_num_queries(0):
        assert portal.outbox.outbox_publish_many(messages, stamped=True) == 3
    portal.outbox._publisher_drop(portal.celery.app.conf.broker_write_url or portal.celery.app.conf.broker_url)
    settings.CELERY_BROKER_URL = dead_broker
    later = [outbox_enqueue(record_task, [name]) for name in ("d", "e")]
    with django_assert_num_queries(1):  # the broker is down: both unmarked, left for the sweep
        assert portal.outbox.outbox_publish_many(later, stamped=True) == 0
    assert sorted(OutboxMessage.objects.filter(published_at__isnull=True).values_list("args", flat=True)) == [["d"], ["e"]]
    settings.CELERY_BROKER_URL = settings.REDIS_URL.replace("unix://", "redis+socket://")
    portal.outbox._broker_down_until.clear()
    with django_assert_num_queries(2):  # the sweep: what is due, then one statement marking both published
        assert outbox_sweep() == 2
    assert not OutboxMessage.objects.filter(published_at__isnull=True).exists()
    portal.outbox._publisher_drop(portal.celery.app.conf.broker_write_url or portal.celery.app.conf.broker_url)


def test_a_batch_writes_its_messages_in_one_insert_at_its_end(db, monkeypatch, django_capture_on_commit_callbacks):
    batches = []
    monkeypatch.setattr(portal.outbox, "outbox_publish_many",
                        lambda messages, **options: batches.append([m.args[0] for m in messages]) or len(messages))
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        with CaptureQueriesContext(connection) as captured, portal.outbox.outbox_batch():
            first = outbox_enqueue(record_task, ["first"])
            outbox_enqueue(record_task, ["second"], countdown=5)
            assert first.pk is None and not OutboxMessage.objects.exists()  # not written before the batch's end
            with transaction.atomic():  # a savepoint inside: written at once, published with its own level's
                outbox_enqueue(record_task, ["in a savepoint"])
            with portal.outbox.outbox_batch():  # a batch inside is the outer's
                outbox_enqueue(record_task, ["third"])
        inserts = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("/* outbox_insert */")]
        assert len(inserts) == 2 and first.pk is not None
        assert list(OutboxMessage.objects.order_by("id").values_list("args", flat=True)) == [
            ["in a savepoint"], ["first"], ["second"], ["third"]]
    assert sorted(batches) == [["first", "second", "third"], ["in a savepoint"]]


def test_a_batch_that_fails_writes_nothing(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with pytest.raises(ZeroDivisionError), transaction.atomic(), portal.outbox.outbox_batch():
            outbox_enqueue(record_task, ["lost with the transaction"])
            1 / 0
        with transaction.atomic(), portal.outbox.outbox_batch():
            outbox_enqueue(record_task, ["after"])
    assert list(OutboxMessage.objects.values_list("args", flat=True)) == [["after"]] and len(callbacks) == 1


def test_a_transactions_messages_go_to_the_broker_as_one_and_the_worker_publishes_the_others(
        db, settings, monkeypatch, django_capture_on_commit_callbacks):
    """After the commit, one broker message carries the transaction's messages, due when the earliest is; the
    worker taking it publishes the others, each due when it is, then delivers the earliest."""
    settings.CELERY_BROKER_URL = settings.REDIS_URL.replace("unix://", "redis+socket://")  # a live broker, not eager
    sends = []
    monkeypatch.setattr(portal.outbox, "_send", lambda connection, message, countdown, carried=():
                        sends.append((message.args[0], round(countdown), [OutboxMessage.objects.get(pk=pk).args[0]
                                                                          for pk in carried])))
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        later = outbox_enqueue(record_task, ["in a minute"], countdown=60)
        now = outbox_enqueue(record_task, ["now"])
        outbox_enqueue(record_task, ["in ten seconds"], countdown=10)
    assert sends == [("now", 0, ["in ten seconds", "in a minute"])]  # the others in the order they are due
    sends.clear()
    from portal.tasks import outbox_deliver_task

    outbox_deliver_task(now.pk, *[m.pk for m in OutboxMessage.objects.exclude(pk=now.pk).order_by("id")])
    assert sends == [("in a minute", 60, []), ("in ten seconds", 10, [])] and CALLS == [["now"]]
    later.refresh_from_db()
    assert later.published_at is not None and later.done_at is None  # handed on, not yet due
    portal.outbox._publisher_drop(portal.celery.app.conf.broker_write_url or portal.celery.app.conf.broker_url)


def test_a_message_queued_by_a_task_its_hook_runs_gets_a_hook_of_its_own(db, settings,
                                                                       django_capture_on_commit_callbacks):
    """In eager mode a task runs inside the hook that publishes it, in the same (test) transaction: what it
    queues is published by a new hook, not added to the one already running."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    with django_capture_on_commit_callbacks(execute=True):
        outbox_enqueue(chain_task, [1])
    assert CALLS == [1, 2, 3]
