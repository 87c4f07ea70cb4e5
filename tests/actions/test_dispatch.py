"""Dispatch (idempotent claim, delivery leases), reporting back (run_update, run_log_add, run_finish), run
timeouts, and the run_id link between runs and entities."""
from datetime import timedelta

import pytest
from django.utils import timezone

import actions.backends
from actions.choices import RunStatus
from actions.models import Run
from actions.services.runs import (run_delivery_leases_expire, run_dispatch_claim, run_finish, run_log_add,
                                   run_record_response, run_request, run_update)
from actions.tasks import run_dispatch_task, run_timeouts_task
from audit import choices as audit_choices
from audit.models import AuditEvent
from catalog.models import Blueprint, Entity
from catalog.services.entities import entities_delete, entity_write_one
from portal.actor import Actor
from portal.errors import Conflict, Forbidden, ValidationFailed
from portal.models import OutboxMessage
from tests.factories import ActionFactory
from tests.support.runs import actor_of, grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivered(monkeypatch):
    calls = []
    monkeypatch.setattr(actions.backends, "backend_dispatch", lambda run_id: calls.append(run_id), raising=False)
    return calls


def in_progress(users, action=None, entity="portal"):
    action = action or ActionFactory()
    grant("execute", action, users=[users["dev"]])
    return run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier=entity)


def updates(run):
    return list(AuditEvent.objects.filter(run_id=run.id, resource_type="run").exclude(verb=audit_choices.RUN_CREATED)
                .order_by("id"))


# --- dispatch --------------------------------------------------------------------------------------

def test_dispatch_twice_delivers_once(users, delivered):
    run = in_progress(users)
    assert run_dispatch_task(run.id) is True
    assert run_dispatch_task(run.id) is False
    assert delivered == [run.id]
    run.refresh_from_db()
    assert run.dispatched_at is not None and run.attempts == 1


def test_waiting_and_ended_runs_are_not_dispatched(users, delivered):
    action = ActionFactory(required_approval=True)
    run = in_progress(users, action)
    assert run_dispatch_task(run.id) is False
    assert delivered == []


def expire_lease(run):
    Run.objects.filter(pk=run.pk).update(delivery_lease_until=timezone.now() - timedelta(seconds=1))


def test_an_expired_webhook_lease_queues_the_next_attempt(users, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 2
    run = in_progress(users)
    live = in_progress(users, ActionFactory(identifier="deploy_too"))
    assert run_dispatch_claim(run_id=run.id) and run_dispatch_claim(run_id=live.id)  # … and the worker dies
    run.refresh_from_db()
    assert run.attempts == 1 and run.delivery_lease_until > timezone.now()
    assert run_delivery_leases_expire() == 0  # a live lease is left alone
    expire_lease(run)
    assert run_delivery_leases_expire() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.IN_PROGRESS and run.delivery_lease_until is None and run.attempts == 1
    assert timedelta(seconds=1) < run.next_attempt_at - timezone.now() <= timedelta(seconds=2)
    assert list(OutboxMessage.objects.filter(task="actions.webhook_deliver").values_list("args", flat=True)) == [
        [run.id, 2]]
    assert run_delivery_leases_expire() == 0  # taken care of once


def test_an_expired_lease_ends_a_run_whose_backend_cannot_be_sent_again(users):
    run = in_progress(users)
    run.action.invocation_method = {"type": "GITHUB", "org": "acme", "repo": "shop", "workflow": "deploy.yml"}
    run.action.save()
    assert run_dispatch_claim(run_id=run.id)
    expire_lease(run)
    assert run_delivery_leases_expire() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.FAILURE and run.status_label == "Delivery lease expired after 1 attempt"
    (ended,) = updates(run)
    assert ended.actor_type == "system" and ended.diff["after"]["status"] == "FAILURE"
    assert not OutboxMessage.objects.filter(task__startswith="actions.github").exists()


def test_record_response_stores_payload_and_response(users):
    run = in_progress(users)
    run_record_response(run=run, response={"status": 200}, payload={"body": {"a": 1}})
    run.refresh_from_db()
    assert run.payload == {"body": {"a": 1}} and run.response == {"status": 200}


# --- reporting back -------------------------------------------------------------------------------

def test_requester_reports_success(users):
    run = in_progress(users)
    run = run_update(actor=actor_of(users["dev"]), run=run, status="SUCCESS", status_label="done",
                     link="https://ci.example.com/1", summary="all good", external_run_id="gh-1")
    run.refresh_from_db()
    assert (run.status, run.status_label, run.links, run.summary, run.external_run_id) == (
        "SUCCESS", "done", ["https://ci.example.com/1"], "all good", "gh-1")
    assert run.ended_at is not None and not run.status_locked
    (event,) = updates(run)
    assert event.verb == audit_choices.RUN_UPDATED and event.actor == "dev@example.com"
    assert event.diff["before"]["status"] == "IN_PROGRESS" and event.diff["after"]["status"] == "SUCCESS"
    assert event.diff["after"]["link"] == ["https://ci.example.com/1"]


def test_links_are_replaced(users):
    run = in_progress(users)
    run_update(actor=actor_of(users["dev"]), run=run, link=["https://a", "https://b"])
    run = run_update(actor=actor_of(users["dev"]), run=run, link="https://c")
    assert run.links == ["https://c"] and run.status == RunStatus.IN_PROGRESS
    with pytest.raises(ValidationFailed, match="^link: must be a URL or a list of URLs"):
        run_update(actor=actor_of(users["dev"]), run=run, link=[1])


def test_illegal_transition_is_a_conflict(users):
    run = in_progress(users)
    run_update(actor=actor_of(users["dev"]), run=run, status="FAILURE")
    with pytest.raises(Conflict, match="cannot go from FAILURE to SUCCESS"):
        run_update(actor=actor_of(users["dev"]), run=run, status="SUCCESS")
    with pytest.raises(ValidationFailed, match="^status: must be SUCCESS or FAILURE"):
        run_update(actor=actor_of(users["dev"]), run=run, status="IN_PROGRESS")


def test_only_requester_admin_or_system_may_report(users):
    run = in_progress(users)
    with pytest.raises(Forbidden, match="Only the requester"):
        run_update(actor=actor_of(users["pay"]), run=run, status_label="x")
    with pytest.raises(Forbidden):
        run_log_add(actor=actor_of(users["pay"]), run=run, message="hi")
    run_update(actor=actor_of(users["admin"]), run=run, status_label="admin")
    run_log_add(actor=Actor.system(), run=run, message="system")


def test_log_without_termination(users):
    run = in_progress(users)
    log = run_log_add(actor=actor_of(users["dev"]), run=run, message="step 1")
    assert log.run_id == run.id and log.message == "step 1"
    (event,) = updates(run)
    assert event.verb == audit_choices.RUN_LOG_ADDED
    assert event.diff["after"] == {"id": log.pk, "message": "step 1", "terminationStatus": None, "statusLabel": None}
    assert Run.objects.get(pk=run.pk).status == RunStatus.IN_PROGRESS


def test_termination_status_is_final(users):
    run = in_progress(users)
    run_log_add(actor=actor_of(users["dev"]), run=run, message="boom", termination_status="FAILURE", status_label="broke")
    run.refresh_from_db()
    assert (run.status, run.status_label, run.status_locked) == ("FAILURE", "broke", True)
    logged, updated = updates(run)
    assert (logged.verb, updated.verb) == (audit_choices.RUN_LOG_ADDED, audit_choices.RUN_UPDATED)
    assert updated.diff["after"]["statusLocked"] is True
    with pytest.raises(Conflict, match="its status is final"):
        run_update(actor=actor_of(users["admin"]), run=run, status="SUCCESS")
    with pytest.raises(Conflict, match="its status is final"):
        run_log_add(actor=actor_of(users["dev"]), run=run, message="again", termination_status="SUCCESS")
    run_update(actor=actor_of(users["dev"]), run=run, summary="post-mortem")  # other fields still change


def test_run_finish_is_a_noop_on_ended_runs(users):
    run = in_progress(users)
    run = run_finish(actor=Actor.system(), run=run, status="FAILURE", label="webhook answered 500")
    assert run.status == "FAILURE" and run.status_label == "webhook answered 500"
    (event,) = updates(run)
    assert event.actor == "system" and event.diff["after"]["status"] == "FAILURE"
    assert run_finish(actor=Actor.system(), run=run, status="SUCCESS", label="late").status == "FAILURE"
    assert len(updates(run)) == 1


def test_runs_time_out(users):
    run = in_progress(users)
    assert run_timeouts_task() == 0
    Run.objects.filter(pk=run.pk).update(timeout_at=timezone.now() - timedelta(seconds=1))
    assert run_timeouts_task() == 1
    run.refresh_from_db()
    assert run.status == "FAILURE" and run.status_label == "Timed out after 1:00:00 without a report"
    (event,) = updates(run)
    assert event.actor == "system" and event.diff["after"]["status"] == "FAILURE"


# --- the run_id link ------------------------------------------------------------------------------

def test_successful_delete_run_removes_its_entity(users):
    action = ActionFactory(identifier="delete_service", operation="DELETE")
    run = in_progress(users, action)
    run = run_update(actor=actor_of(users["dev"]), run=run, status="SUCCESS")
    assert not Entity.objects.filter(identifier="portal").exists()
    run.refresh_from_db()
    assert run.status == "SUCCESS" and run.entity is None and run.entity_identifier == "portal"
    deleted = AuditEvent.objects.get(verb=audit_choices.ENTITY_DELETED)
    assert deleted.run_id == run.id and deleted.identifier == "portal" and deleted.actor == "system"


def test_failed_delete_run_keeps_its_entity(users):
    action = ActionFactory(identifier="delete_service", operation="DELETE")
    run = in_progress(users, action)
    run_log_add(actor=actor_of(users["dev"]), run=run, message="no", termination_status="FAILURE")
    assert Entity.objects.filter(identifier="portal").exists()


def test_entities_are_written_only_for_runs_in_progress(users):
    env = Blueprint.objects.get(identifier="Env")
    with pytest.raises(ValidationFailed, match="^run_id: run r_missing is not in progress"):
        entity_write_one(actor=Actor.system(), blueprint=env, data={"identifier": "e1"}, run_id="r_missing")
    run = in_progress(users)
    run_update(actor=actor_of(users["dev"]), run=run, status="SUCCESS")
    with pytest.raises(ValidationFailed, match=f"^run_id: run {run.id} is not in progress"):
        entity_write_one(actor=Actor.system(), blueprint=env, data={"identifier": "e1"}, run_id=run.id)
    with pytest.raises(ValidationFailed, match="is not in progress"):
        entities_delete(actor=Actor.system(), blueprint=Blueprint.objects.get(identifier="Service"),
                        identifiers=["checkout"], run_id=run.id)
    assert not Entity.objects.filter(identifier="e1").exists()


def test_create_run_links_its_result_entity(users, django_capture_on_commit_callbacks):
    action = ActionFactory(identifier="create_env", operation="CREATE", blueprint="Env")
    grant("execute", action, users=[users["dev"]])
    run = run_request(actor=actor_of(users["dev"]), action=action, properties={})
    env = Blueprint.objects.get(identifier="Env")
    with django_capture_on_commit_callbacks(execute=True):
        entity_write_one(actor=Actor.system(), blueprint=env, data={"identifier": "env-1"}, run_id=run.id)
    run.refresh_from_db()
    assert run.result_entity.identifier == "env-1"
    assert Entity.objects.get(identifier="env-1").run_id == run.id
    (event,) = updates(run)
    assert event.verb == audit_choices.RUN_UPDATED and event.diff["after"]["resultEntity"] == "env-1"
    with django_capture_on_commit_callbacks(execute=True):  # the first entity stays the result
        entity_write_one(actor=Actor.system(), blueprint=env, data={"identifier": "env-2"}, run_id=run.id)
    run.refresh_from_db()
    assert run.result_entity.identifier == "env-1"
