"""retry_on_conflict (portal/retry.py): a write PostgreSQL aborts to break a deadlock is run again at the
service boundary; one that loses every time answers 503 `busy` with Retry-After: 1 and writes nothing.

The deadlock is real, not simulated: a hook around the entity write's store step (`_store`, inside the
service's transaction) has the request's connection take advisory lock A while a second connection holds
B and waits for A, then asks for B. PostgreSQL finds the cycle and aborts the request's transaction (its
deadlock_timeout is set low, the other connection's high, so the request's side is always the victim).
"""
import threading
import time

import psycopg
import psycopg.sql
import pytest
from django.db import OperationalError, connection, transaction

from actions.choices import RunStatus
from audit.models import AuditEvent
from catalog.models import Blueprint, Entity
from catalog.services import entities as entity_services
from catalog.services.entities import UPSERT, entities_write
from portal.actor import Actor
from portal.retry import ATTEMPTS
from tests.factories import BlueprintFactory, UserFactory
from tests.support.upsert_entity import ENV, dispatch, make_run

pytestmark = pytest.mark.django_db(transaction=True)

LOCK_A, LOCK_B = 0x64656164, 0x6C6F636B


def _dsn():
    params = connection.get_connection_params()
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if k in ("host", "port", "user", "password", "dbname")})


def deadlock_now(others):
    """Deadlock the current transaction against a second connection; raises PostgreSQL's deadlock_detected.
    The second connection's end is added to `others` (an Event set once it let go)."""
    holding_b = threading.Event()
    done = threading.Event()

    def other(pid_box):
        with psycopg.connect(_dsn()) as conn:
            conn.execute("SET deadlock_timeout = '30s'")
            pid_box.append(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_B])
            holding_b.set()
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_A])  # waits for the request's transaction
            conn.rollback()
        done.set()

    with connection.cursor() as cursor:
        # deadlock_timeout is a superuser's setting: set it as the session's (superuser) login, then go back
        # to the application's role for the rest of the transaction.
        cursor.execute("SELECT current_user")
        (role,) = cursor.fetchone()
        cursor.execute("SET LOCAL ROLE NONE")
        cursor.execute("SET LOCAL deadlock_timeout = '20ms'")
        cursor.execute(psycopg.sql.SQL("SET LOCAL ROLE {}").format(psycopg.sql.Identifier(role)).as_string(cursor.connection))
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_A])
        pid_box = []
        threading.Thread(target=other, args=(pid_box,), daemon=True).start()
        assert holding_b.wait(10)
        for _ in range(500):  # until the other connection waits for A: then asking for B closes the cycle
            cursor.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", [pid_box[0]])
            if cursor.fetchone()[0]:
                break
            time.sleep(0.01)
        others.append(done)
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_B])


@pytest.fixture
def deadlocking_store(monkeypatch):
    """Make the first `failures` calls of the entity store step deadlock; returns the list of calls."""
    calls, others = [], []
    original = entity_services._store

    def install(failures):
        def store(*args, **kwargs):
            calls.append(time.monotonic())
            if len(calls) <= failures:
                deadlock_now(others)
            return original(*args, **kwargs)

        monkeypatch.setattr(entity_services, "_store", store)
        return calls

    yield install
    for done in others:
        assert done.wait(10), "the other connection was left waiting"


@pytest.fixture
def service_blueprint(db):
    return BlueprintFactory(identifier="service", title="Service",
                            schema={"properties": {"tier": {"type": "string"}}})


def _entity_events(identifier):
    return AuditEvent.objects.filter(resource_type="entity", identifier=identifier)


def test_a_write_that_always_deadlocks_answers_503_busy_after_five_attempts_and_writes_nothing(
        admin_api, service_blueprint, deadlocking_store):
    calls = deadlocking_store(failures=ATTEMPTS)
    response = admin_api.post("/v1/blueprints/service/entities?upsert=true",
                              {"identifier": "api", "properties": {"tier": "gold"}}, format="json")
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json() == {"ok": False, "error": "busy",
                               "message": "The portal is busy with concurrent changes to the same items; try again shortly."}
    assert len(calls) == ATTEMPTS
    assert not Entity.objects.filter(identifier="api").exists()
    assert not _entity_events("api").exists()


def test_a_transient_deadlock_is_retried_and_the_write_lands_once(admin_api, service_blueprint, deadlocking_store):
    calls = deadlocking_store(failures=1)
    response = admin_api.post("/v1/blueprints/service/entities?upsert=true",
                              {"identifier": "api", "properties": {"tier": "gold"}}, format="json")
    assert response.status_code == 201, response.content
    assert len(calls) == 2
    assert Entity.objects.get(identifier="api").properties == {"tier": "gold"}
    assert [e.verb for e in _entity_events("api")] == ["catalog.entity.created"]


def test_a_bulk_load_with_placeholders_retried_leaves_no_placeholder_of_the_lost_attempt(
        admin_api, service_blueprint, deadlocking_store):
    BlueprintFactory(
        identifier="app", title="App", schema={"properties": {}},
        relations={"runsOn": {"title": "Runs on", "target": "service", "many": True, "required": False}})
    calls = deadlocking_store(failures=2)
    response = admin_api.post("/v1/blueprints/app/entities/bulk?upsert=true&create_missing_related_entities=true",
                              {"entities": [{"identifier": "web", "relations": {"runsOn": ["db", "cache"]}}]}, format="json")
    assert response.status_code == 200, response.content
    assert len(calls) == 3
    assert sorted(Entity.objects.filter(blueprint__identifier="service").values_list("identifier", "is_stub")) == [
        ("cache", True), ("db", True)]
    assert AuditEvent.objects.filter(resource_type="entity").count() == 3  # two stubs and the app, once each


def test_a_service_inside_another_transaction_does_not_retry_itself(service_blueprint, deadlocking_store):
    calls = deadlocking_store(failures=1)
    with pytest.raises(OperationalError) as raised:
        with transaction.atomic():
            entities_write(actor=Actor.system(), blueprint=Blueprint.objects.get(identifier="service"),
                           items=[{"identifier": "inner"}], mode=UPSERT)
    assert raised.value.__cause__.sqlstate == "40P01"
    assert len(calls) == 1
    assert not Entity.objects.filter(identifier="inner").exists()


def test_a_page_that_loses_every_time_shows_the_busy_page(client, admin_user, service_blueprint, deadlocking_store):
    calls = deadlocking_store(failures=ATTEMPTS)
    client.force_login(admin_user)
    client.raise_request_exception = False  # answer as a server does: through the 500/503 handler
    response = client.post("/admin/catalog/entity/add/", {"blueprint": service_blueprint.pk, "identifier": "paged",
                                                           "title": "Paged", "icon": "", "properties": "{}",
                                                           "relations": "{}", "team": "[]"})
    if response.status_code == 200:  # the form's own fields: show why, so the test says what to fix
        pytest.fail(response.content.decode()[:3000])
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert "The portal is busy" in response.content.decode()
    assert len(calls) == ATTEMPTS
    assert not Entity.objects.filter(identifier="paged").exists()


@pytest.mark.parametrize("failures, status, label", [
    (1, RunStatus.SUCCESS, "Entity 'dev-x' of blueprint 'Env' created"),
    (ATTEMPTS, RunStatus.FAILURE, "Entity not written: The portal is busy with concurrent changes to the same items; "
                                  "try again shortly."),
])
def test_an_upsert_entity_run_retries_its_write_at_the_task_boundary(deadlocking_store, failures, status, label):
    BlueprintFactory(**ENV)
    requester = UserFactory(email="dev@example.com")
    calls = deadlocking_store(failures=failures)
    run = dispatch(make_run(requester, properties={"name": "dev-x", "branch": "b"}))
    assert (run.status, run.status_label) == (status, label)
    assert len(calls) == min(failures + 1, ATTEMPTS)
    written = status == RunStatus.SUCCESS
    assert Entity.objects.filter(identifier="dev-x").exists() is written
    assert _entity_events("dev-x").count() == int(written)
