"""Runs under faults, against a real `celery worker` on the test database and Redis and a receiver on 127.0.0.1:
a worker SIGKILLed mid-delivery, Redis restarted with a retry pending, a run requested while the broker is down,
and a delivery lease that expires on every attempt. The sweeps beat would run (outbox_sweep,
run_delivery_leases_expire) are called by the test, so it needs no beat process.

A run's runId is the receiver's idempotency key: a try cut short mid-send (the worker killed) is sent again
with the same body, so a receiver that sees a runId twice must treat the second as a repeat."""
import contextlib
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from actions.choices import RunStatus
from actions.models import Run
from actions.serializers import run_json
from actions.services.runs import run_delivery_leases_expire, run_request
from actions.tasks import run_dispatch_task
from actions.backends.webhook import webhook_deliver_task
from audit import choices as audit_choices
from audit.models import AuditEvent
from portal.actor import Actor
from web.management.commands.demo import serve_commands
from portal.models import OutboxMessage
from portal.outbox import outbox_sweep
from tests.factories import ActionFactory, BlueprintFactory, UserFactory
from tests.support.api import api_for
from tests.outbox import on_publish
from tests.portal.processes import ThrowawayRedis, free_port, portal_env, start, wait_for_line

pytestmark = pytest.mark.django_db(transaction=True)  # the worker reads what the test commits
WAIT_SECONDS = 90  # a bound on waiting, not a measurement


class Receiver:
    """A webhook receiver on 127.0.0.1: answers each request with the next of `answers` (the last repeats);
    "hang" holds the request until `release()`. Keeps the JSON bodies it received."""

    def __init__(self, answers):
        self.answers, self.bodies, self.released = list(answers), [], threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                answer = receiver.answers[min(len(receiver.bodies), len(receiver.answers) - 1)]
                receiver.bodies.append(body)
                if answer == "hang":
                    receiver.released.wait(WAIT_SECONDS)
                    answer = 200
                try:
                    self.send_response(answer)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass  # the sender is gone (killed)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def release(self):
        self.released.set()

    def close(self):
        self.release()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    made = []
    yield lambda answers: made.append(Receiver(answers)) or made[-1]
    for receiver in made:
        receiver.close()


def eventually(check, *, step=None):
    """check()'s first truthy value, calling `step` (a sweep) before each look; fails after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        if step is not None:
            step()
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {WAIT_SECONDS}s"
        time.sleep(0.2)


def sweep():
    """What beat does every few seconds."""
    run_delivery_leases_expire()
    outbox_sweep()


@pytest.fixture
def fast(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.5
    settings.WEBHOOK_TIMEOUT_SECONDS = 60  # a hanging receiver is ended by the lease, not by the HTTP timeout
    settings.OUTBOX_REPUBLISH_SECONDS = 1
    return settings


@pytest.fixture
def workers(tmp_path, settings):
    """start(broker_url=None) → a `celery worker` (the demo's command) on the test database and the broker."""
    started = []
    name = connection.settings_dict["NAME"]
    database_url = urlunsplit(urlsplit(settings.DATABASE_URL)._replace(path=f"/{name}"))  # the embedded one's too

    def start_worker(broker_url=None):
        log_path = tmp_path / f"worker-{len(started)}.log"
        env = portal_env(tmp_path, DATABASE_URL=database_url, REDIS_URL=broker_url or settings.REDIS_URL,
                         OUTBOUND_ALLOWED_NETWORKS="127.0.0.0/8", DELIVERY_LEASE_SECONDS="2", OUTBOX_LEASE_SECONDS="2",
                         WEBHOOK_RETRY_BASE_SECONDS="3", WEBHOOK_TIMEOUT_SECONDS="60")
        worker = start(serve_commands(free_port())["worker"], env=env, log_path=log_path)
        started.append(worker)
        wait_for_line(log_path, r"celery@\S+ ready", process=worker)
        return worker

    yield start_worker
    for worker in started:  # killed, not stopped: a warm shutdown only slows the test down
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def webhook_action(url):
    BlueprintFactory(identifier="Service", title="Service", schema={"properties": {}})
    return ActionFactory(
        identifier="deploy", title="Deploy", trigger_type="self-service", operation="CREATE",
        blueprint_identifier="Service",
        trigger={"type": "self-service", "operation": "CREATE", "blueprintIdentifier": "Service",
                 "userInputs": {"properties": {}, "required": []}},
        invocation_method={"type": "WEBHOOK", "url": url, "synchronized": True})


def request_run(action):
    admin = UserFactory(email="admin@example.com", admin=True)
    return run_request(actor=Actor(user=admin, origin="API"), action=action, properties={})


def ended(run):
    run.refresh_from_db()
    return run.status in (RunStatus.SUCCESS, RunStatus.FAILURE) and run


def endings(run):
    return [e for e in AuditEvent.objects.filter(run_id=run.id, verb=audit_choices.RUN_UPDATED)
            if (e.diff.get("after") or {}).get("status") != (e.diff.get("before") or {}).get("status")
            and (e.diff.get("after") or {}).get("status") in ("SUCCESS", "FAILURE")]


def test_a_worker_killed_mid_delivery_is_replaced_and_the_run_ends_once(fast, receivers, workers):
    receiver = receivers(["hang", 200])
    first = workers()
    run = request_run(webhook_action(receiver.url))
    eventually(lambda: len(receiver.bodies) == 1)  # the worker is sending, the receiver holds the request
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    receiver.release()
    run.refresh_from_db()
    assert run_json(run)["waitingFor"].startswith("delivery (attempt 1 of 5, under way until ")

    workers()
    run = eventually(lambda: ended(run), step=sweep)
    assert run.status == RunStatus.SUCCESS and run.attempts == 2
    # The kill came mid-send: the try was sent again, with the same runId (the receiver's idempotency key).
    assert [body["context"]["runId"] for body in receiver.bodies] == [run.id, run.id]
    assert len(endings(run)) == 1
    # The killed worker's outbox message is taken back by the sweep and found done with: nothing is sent again.
    eventually(lambda: not OutboxMessage.objects.filter(done_at__isnull=True).exists(), step=sweep)
    assert len(receiver.bodies) == 2 and not OutboxMessage.objects.filter(failed_at__isnull=False).exists()


def test_a_retry_pending_when_redis_restarts_still_happens(fast, receivers, workers):
    redis = ThrowawayRedis(free_port())
    redis.start()
    try:
        fast.CELERY_BROKER_URL = redis.url
        receiver = receivers([503, 200])
        workers(broker_url=redis.url)
        run = request_run(webhook_action(receiver.url))
        retry = eventually(lambda: OutboxMessage.objects.filter(task=webhook_deliver_task.name,
                                                                published_at__isnull=False).first())
        assert retry.args == [run.id, 2] and len(receiver.bodies) == 1
        redis.stop()  # what the broker held (the pending retry) is gone with it
        redis.start()
        run = eventually(lambda: ended(run), step=sweep)
        first_published = retry.published_at
        retry.refresh_from_db()
        # The broker lost it with its data; the sweep published it again once due, and that one ran.
        assert retry.published_at > retry.not_before > first_published and retry.done_at and retry.attempts == 1
        assert run.status == RunStatus.SUCCESS and run.attempts == 2 and len(receiver.bodies) == 2
        assert {body["context"]["runId"] for body in receiver.bodies} == {run.id}
    finally:
        redis.stop()


def test_a_run_requested_while_the_broker_is_down_answers_202_and_runs_once_when_it_is_back(fast, receivers, workers):
    receiver = receivers([200])
    webhook_action(receiver.url)
    api = api_for(UserFactory(email="root@example.com", admin=True))
    broker = fast.CELERY_BROKER_URL
    fast.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there

    response = api.post("/v1/actions/deploy/runs", {"properties": {}}, format="json")
    assert response.status_code == 202, response.content
    run = Run.objects.get(pk=response.json()["run"]["id"])
    assert run.status == RunStatus.IN_PROGRESS and response.json()["run"]["waitingFor"] == "delivery (attempt 1 of 5)"
    message = OutboxMessage.objects.get(task=run_dispatch_task.name)
    assert message.args == [run.id] and message.published_at is None and message.done_at is None
    assert outbox_sweep() == 0  # still down: it stays pending

    fast.CELERY_BROKER_URL = broker  # the broker is back
    workers()
    run = eventually(lambda: ended(run), step=outbox_sweep)
    assert run.status == RunStatus.SUCCESS and len(receiver.bodies) == 1
    for _ in range(3):
        sweep()
    eventually(lambda: OutboxMessage.objects.filter(pk=message.pk, done_at__isnull=False).exists())
    assert len(receiver.bodies) == 1 and Run.objects.count() == 1 and len(endings(run)) == 1


def test_a_delivery_lease_that_expires_is_retried_then_the_run_fails_saying_why(fast, receivers, monkeypatch, client):
    fast.DELIVERY_LEASE_SECONDS = 1
    fast.WEBHOOK_MAX_ATTEMPTS = 2
    receiver = receivers(["hang"])  # never answers while the test runs
    threads = []

    def run_in_a_thread(task):  # a worker: each published message runs on its own, and may hang there
        def deliver(args):
            def target():
                try:
                    task(*args)
                finally:
                    connection.close()
            threads.append(threading.Thread(target=target, daemon=True))
            threads[-1].start()
        return deliver

    on_publish(monkeypatch, {task: run_in_a_thread(task) for task in (run_dispatch_task, webhook_deliver_task)})
    run = request_run(webhook_action(receiver.url))
    eventually(lambda: len(receiver.bodies) == 1)
    run.refresh_from_db()
    assert run.attempts == 1 and run.delivery_lease_until is not None
    assert run_json(run)["waitingFor"].startswith("delivery (attempt 1 of 2, under way until ")

    eventually(run_delivery_leases_expire)  # attempt 1's lease expired: attempt 2 is queued
    run.refresh_from_db()
    assert run.status == RunStatus.IN_PROGRESS and run_json(run)["waitingFor"].startswith("delivery (attempt 2 of 2, next at ")
    eventually(lambda: len(receiver.bodies) == 2)
    client.force_login(run.requested_by)
    assert "Waiting for delivery (attempt 2 of 2, under way until" in client.get(f"/runs/{run.id}/").content.decode()

    eventually(run_delivery_leases_expire)  # attempt 2's lease expired too, and it was the last
    run.refresh_from_db()
    assert run.status == RunStatus.FAILURE and run.status_label == "Delivery lease expired after 2 attempts"
    assert run_json(run)["waitingFor"] is None
    (ending,) = endings(run)
    assert ending.actor_type == "system" and ending.diff["after"]["statusLabel"] == "Delivery lease expired after 2 attempts"

    receiver.release()  # the hung tries come back late: they change nothing
    for thread in threads:
        thread.join(WAIT_SECONDS)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILURE and len(receiver.bodies) == 2 and len(endings(run)) == 1
