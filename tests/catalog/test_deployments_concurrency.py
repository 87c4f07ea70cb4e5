"""Deployment reports racing a lock (issue 5): 100 reports in flight while a lock is taken midway.

`POST /v1/deployments` checks the locks and records the deployment in one transaction holding row locks
that conflict with the lock change (catalog/services/deployments.py). So every report either commits
before the lock does, or is refused with 423 and audited; none is recorded after the lock's commit.

"Before the lock's commit" is read from the audit log: a report and the lock change hold conflicting row
locks while they write their audit events, so whichever takes the rows second inserts its event (and draws
its id) after the first committed. A deployment whose `catalog.entity.created` event id is below the lock
change's event id committed before the lock; one above it would be a deployment recorded after the lock.
The intact hash chain at the end shows every event was sealed once, in a chain without gaps.
"""
import threading
import time

import pytest
from django.db import connection, connections, transaction
from rest_framework.test import APIClient

from audit import choices as audit_choices
from audit.chain import audit_chain_verify, audit_seal
from audit.models import AuditEvent
from catalog.models import Entity
from tests.factories import ApiClientFactory, EntityFactory, UserFactory
from tests.support.api import token_of
from tests.support.deployments import install_contract, lock, report

pytestmark = pytest.mark.django_db(transaction=True)

REPORTS = 100
LOCK_AFTER = 10  # reports recorded before the lock is taken: the lock lands midway, not before the first
# Connections left to the other test runs sharing this PostgreSQL: each pytest session holds one or two,
# their threaded tests a few more, and they may open them while this test runs.
MARGIN = 20
POOL = 32  # database connections the reports share at most, like a server's pool: however many PostgreSQL
# allows, most reports are still waiting for one when the lock is asked for, so the race always has reports
# arriving after the lock (with 100 connections every report could be queued at the row before it)
JOIN_SECONDS = 120


def database_slots(wanted, *, own):
    """How many report threads may talk to the database at once.

    PostgreSQL here allows `max_connections` in all (100), shared with every other test run, so 100
    report threads cannot each hold a connection. The threads all run at once; a semaphore of this size
    bounds only their database work, the way a server's connection pool does. Sized from what the server
    still accepts: max_connections less the superuser reserve, less the client connections open now (this
    test's own included), less `own` more this test will open outside the semaphore, less MARGIN."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])
        cursor.execute("SHOW superuser_reserved_connections")
        reserved = int(cursor.fetchone()[0])
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
        in_use = cursor.fetchone()[0]
    return max(2, min(wanted, max_connections - reserved - in_use - own - MARGIN))


def bearer_token(user):
    return token_of(ApiClientFactory(user=user))


def race(token, bodies, take_lock):
    """POST every body from its own thread, all released at once, while `take_lock()` runs in a transaction
    of its own once LOCK_AFTER reports are recorded. `take_lock` returns the lock change's audit event id.

    Returns (results, state): results are (body, status, response json) per report; state holds the lock's
    event id, the reports finished (and at the database) when the lock was taken, and the semaphore size."""
    slots_count = database_slots(min(len(bodies), POOL), own=1)  # +1: the lock thread's connection
    slots = threading.Semaphore(slots_count)
    start = threading.Barrier(len(bodies) + 1)
    guard = threading.Lock()
    results, errors = [], []
    state = {"slots": slots_count, "in_db": 0}

    def post(body):
        try:
            api = APIClient()
            api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
            start.wait()
            with slots:
                with guard:
                    state["in_db"] += 1
                try:
                    response = api.post("/v1/deployments", body, format="json")
                    with guard:
                        results.append((body, response.status_code, response.json()))
                finally:
                    connections.close_all()  # before the slot is released
                    with guard:
                        state["in_db"] -= 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            with guard:
                errors.append(exc)

    def lock_midway():
        try:
            start.wait()
            deadline = time.monotonic() + JOIN_SECONDS
            while time.monotonic() < deadline:
                with guard:
                    recorded = sum(1 for _, status, _ in results if status == 201)
                    if recorded >= LOCK_AFTER or len(results) == len(bodies):
                        break
                time.sleep(0.001)
            with transaction.atomic():
                with guard:
                    state["finished_at_lock"], state["in_db_at_lock"] = len(results), state["in_db"]
                state["lock_event_id"] = take_lock()
                with guard:
                    state["finished_when_locked"] = len(results)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            with guard:
                errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(body,)) for body in bodies]
    threads.append(threading.Thread(target=lock_midway))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_SECONDS)
    assert not any(thread.is_alive() for thread in threads), "a report or the lock is stuck"
    assert not errors, errors
    return results, state


def lock_event_id(blueprint, identifier):
    """The audit event the lock change just wrote, read inside its transaction."""
    return (AuditEvent.objects.filter(verb=audit_choices.ENTITY_UPDATED, blueprint=blueprint, identifier=identifier)
            .order_by("-id").values_list("id", flat=True).first())


def check_race(results, state, *, scope, reason, seeded):
    """What holds however the race went: each report recorded before the lock's commit, or refused and
    audited after it. Returns the recorded reports in commit order."""
    assert len(results) == REPORTS
    statuses = {status for _, status, _ in results}
    assert statuses <= {201, 423}, [(status, body) for _, status, body in results if status not in (201, 423)]
    recorded = [(body, json) for body, status, json in results if status == 201]
    refused = [(body, json) for body, status, json in results if status == 423]
    # The lock was taken midway: after LOCK_AFTER recorded reports, with others at the database.
    assert len(recorded) >= LOCK_AFTER and state["finished_at_lock"] < REPORTS and state["in_db_at_lock"] > 0, state
    for _, json in refused:
        assert json["ok"] is False and json["error"] == "locked"
        assert json["lock"]["scope"] == scope and json["lock"]["reason"] == reason

    lock_id = state["lock_event_id"]
    assert lock_id is not None
    # Every recorded deployment committed before the lock: its creation event precedes the lock's.
    created = dict(AuditEvent.objects.filter(verb=audit_choices.ENTITY_CREATED, blueprint="deployment",
                                             identifier__in=[json["deployment"]["identifier"] for _, json in recorded])
                   .values_list("identifier", "id"))
    assert len(created) == len(recorded)
    late = {identifier: event_id for identifier, event_id in created.items() if event_id > lock_id}
    assert not late, (lock_id, late)
    # And no deployment at all, reported or not, was created after the lock's commit.
    assert not AuditEvent.objects.filter(verb=audit_choices.ENTITY_CREATED, blueprint="deployment", id__gt=lock_id).exists()
    assert Entity.objects.filter(blueprint__identifier="deployment").count() == len(recorded) + seeded

    # Every refusal is audited once, after the lock (it saw the lock), with the refused report.
    refusals = list(AuditEvent.objects.filter(verb=audit_choices.DEPLOYMENT_REFUSED))
    assert len(refusals) == len(refused)
    assert sorted(e.diff["after"]["version"] for e in refusals) == sorted(body["version"] for body, _ in refused)
    assert all(e.id > lock_id and e.status == "FAILURE" and e.context["lock"]["scope"] == scope for e in refusals)
    audit_seal(wait=True)
    assert audit_chain_verify().fault is None

    return [body for body, json in sorted(recorded, key=lambda pair: created[pair[1]["deployment"]["identifier"]])]


def assert_lock_not_overtaken(in_commit_order, state):
    """Reports already at the database when the lock was asked for may go first: they queued for the row before
    it. The ones still waiting for a connection reach the row after the lock did and must be refused: the lock
    once waited until every report had committed (FOR SHARE lets new share lockers past a queued FOR UPDATE)."""
    assert state["finished_at_lock"] + state["in_db_at_lock"] < REPORTS, state  # the pool keeps some waiting
    assert len(in_commit_order) < REPORTS, state


def test_service_lock_taken_midway_lets_no_later_report_through(system):
    """100 reports of one service to one environment; its running service is locked midway."""
    bp = install_contract(system)
    token = bearer_token(UserFactory(email="ci@example.com", admin=True))
    # The running service exists before the race (its creation is covered by the API tests).
    assert APIClient(HTTP_AUTHORIZATION=f"Bearer {token}").post(
        "/v1/deployments", report(version="0.0.1"), format="json").status_code == 201
    bodies = [report(version=f"1.0.{i}") for i in range(REPORTS)]

    def take_lock():
        lock(system, bp, "runningService", "CartService-production", reason="midway")
        # This transaction now holds the running service's row lock: no report commits until it does.
        return lock_event_id("runningService", "CartService-production")

    results, state = race(token, bodies, take_lock)
    in_commit_order = check_race(results, state, scope="service", reason="midway", seeded=1)
    assert_lock_not_overtaken(in_commit_order, state)

    running = Entity.objects.get(blueprint__identifier="runningService", identifier="CartService-production")
    assert running.properties["locked"] is True and running.properties["lockReason"] == "midway"
    assert running.properties["version"] == in_commit_order[-1]["version"]  # the last report before the lock


def test_environment_lock_taken_midway_refuses_every_service(system):
    """100 reports spread over five services to one environment; the environment is locked midway."""
    bp = install_contract(system)
    services = ["CartService", "PaymentService", "SearchService", "MailService", "AuthService"]
    for name in services[2:]:
        EntityFactory(blueprint=bp["Component"], identifier=name, title=name)
    token = bearer_token(UserFactory(email="ci@example.com", admin=True))
    seed = APIClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    for name in services:
        assert seed.post("/v1/deployments", report(service=name, version="0.0.1"), format="json").status_code == 201
    bodies = [report(service=services[i % len(services)], version=f"1.0.{i}") for i in range(REPORTS)]

    def take_lock():
        lock(system, bp, "environment", "production", reason="release freeze")
        return lock_event_id("environment", "production")

    results, state = race(token, bodies, take_lock)
    in_commit_order = check_race(results, state, scope="environment", reason="release freeze", seeded=len(services))
    assert_lock_not_overtaken(in_commit_order, state)

    # One lock refuses the reports of every service after it.
    refused_services = {body["service"] for body, status, _ in results if status == 423}
    assert refused_services == set(services), refused_services
    assert not Entity.objects.filter(blueprint__identifier="runningService", properties__locked=True).exists()
    for name in services:
        running = Entity.objects.get(blueprint__identifier="runningService", identifier=f"{name}-production")
        mine = [body["version"] for body in in_commit_order if body["service"] == name]
        assert running.properties["version"] == (mine[-1] if mine else "0.0.1")
    # Another environment is not locked.
    assert seed.post("/v1/deployments", report(environment="staging"), format="json").status_code == 201
