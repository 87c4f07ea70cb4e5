"""approval_decide (ANY / ALL, self-approval, second decisions, concurrency) and the expiry sweep."""
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from actions.choices import RunStatus
from actions.models import Approval, Run
from actions.services.approvals import approval_decide
from actions.services.runs import run_request
from actions.tasks import run_approvals_expire_task, run_dispatch_task
from audit import choices as audit_choices
from audit.models import AuditEvent
from portal.errors import Conflict, Forbidden
from tests.factories import ActionFactory
from tests.support.runs import actor_of, catalog_setup, grant

pytestmark = pytest.mark.django_db


def waiting_run(users, approval, **fields):
    action = ActionFactory(required_approval=approval, **fields)
    grant("execute", action, users=[users["dev"]])
    grant("approve", action, teams=["managers"])
    return run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal")


def audits(run):
    return list(AuditEvent.objects.filter(run_id=run.id).exclude(verb=audit_choices.RUN_CREATED).order_by("id"))


def test_any_one_approval_starts_the_run(users, dispatched, django_capture_on_commit_callbacks):
    run = waiting_run(users, {"type": "ANY"})
    with django_capture_on_commit_callbacks(execute=True):
        run = approval_decide(actor=actor_of(users["manager"]), run=run, decision="APPROVE", description="ok")
    run.refresh_from_db()
    assert run.status == RunStatus.IN_PROGRESS and run.started_at is not None and run.timeout_at is not None
    assert dispatched == [run.id]
    decided, updated = audits(run)
    assert decided.verb == audit_choices.RUN_APPROVAL_DECIDED and decided.actor == "manager@example.com"
    assert decided.diff["after"] == {"approver": "manager@example.com", "decision": "APPROVE", "description": "ok"}
    assert updated.verb == audit_choices.RUN_UPDATED
    assert (updated.diff["before"]["status"], updated.diff["after"]["status"]) == ("WAITING_FOR_APPROVAL", "IN_PROGRESS")


def test_decline_declines_with_the_reason(users, dispatched, django_capture_on_commit_callbacks):
    run = waiting_run(users, True)
    with django_capture_on_commit_callbacks(execute=True):
        run = approval_decide(actor=actor_of(users["manager"]), run=run, decision="DECLINE", description="not today")
    assert run.status == RunStatus.DECLINED and run.ended_at is not None
    assert run.status_label == "Declined by manager@example.com: not today"
    assert dispatched == []
    assert [e.verb for e in audits(run)] == [audit_choices.RUN_APPROVAL_DECIDED, audit_choices.RUN_UPDATED]


def test_all_needs_every_eligible_approver(users, dispatched, django_capture_on_commit_callbacks):
    run = waiting_run(users, {"type": "ALL"})
    with django_capture_on_commit_callbacks(execute=True):
        run = approval_decide(actor=actor_of(users["manager"]), run=run, decision="APPROVE", description="")
    assert run.status == RunStatus.WAITING_FOR_APPROVAL and dispatched == []
    assert [e.verb for e in audits(run)] == [audit_choices.RUN_APPROVAL_DECIDED]
    # an admin approving counts as themselves only: manager2 is still awaited
    run = approval_decide(actor=actor_of(users["admin"]), run=run, decision="APPROVE", description="")
    assert run.status == RunStatus.WAITING_FOR_APPROVAL
    with django_capture_on_commit_callbacks(execute=True):
        run = approval_decide(actor=actor_of(users["manager2"]), run=run, decision="APPROVE", description="")
    assert run.status == RunStatus.IN_PROGRESS and dispatched == [run.id]


def test_all_any_decline_declines(users):
    run = waiting_run(users, {"type": "ALL"})
    approval_decide(actor=actor_of(users["manager"]), run=run, decision="APPROVE", description="")
    run = approval_decide(actor=actor_of(users["manager2"]), run=run, decision="DECLINE", description="no")
    assert run.status == RunStatus.DECLINED


def test_requester_cannot_approve_their_own_run(users):
    run = waiting_run(users, True)
    grant("approve", run.action, users=[users["dev"]])
    with pytest.raises(Forbidden, match="cannot approve your own run"):
        approval_decide(actor=actor_of(users["dev"]), run=run, decision="APPROVE", description="")
    assert not Approval.objects.exists() and audits(run) == []


def test_ungranted_user_cannot_decide(users):
    run = waiting_run(users, True)
    with pytest.raises(Forbidden, match="may not approve runs of action 'deploy'"):
        approval_decide(actor=actor_of(users["pay"]), run=run, decision="APPROVE", description="")


def test_second_decision_of_the_same_approver_is_a_conflict(users):
    run = waiting_run(users, {"type": "ALL"})
    approval_decide(actor=actor_of(users["manager"]), run=run, decision="APPROVE", description="")
    with pytest.raises(Conflict, match="already decided"):
        approval_decide(actor=actor_of(users["manager"]), run=run, decision="DECLINE", description="")


def test_decided_run_is_a_conflict(users):
    run = waiting_run(users, True)
    approval_decide(actor=actor_of(users["manager"]), run=run, decision="APPROVE", description="")
    with pytest.raises(Conflict, match="decision on run .* was already taken: it is IN_PROGRESS"):
        approval_decide(actor=actor_of(users["manager2"]), run=run, decision="DECLINE", description="")


def test_expired_waits_are_declined(users):
    run = waiting_run(users, True, approval_timeout_seconds=86400)
    assert run_approvals_expire_task() == 0
    Run.objects.filter(pk=run.pk).update(approval_deadline=timezone.now() - timedelta(seconds=1))
    assert run_approvals_expire_task() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.DECLINED and run.status_label == "Approval expired after 1 day, 0:00:00"
    (event,) = audits(run)
    assert event.verb == audit_choices.RUN_UPDATED and event.actor == "system"
    assert event.diff["after"]["status"] == "DECLINED"
    assert run_approvals_expire_task() == 0


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_decisions_give_one_transition(monkeypatch):
    users = catalog_setup()
    monkeypatch.setattr(run_dispatch_task, "delay", lambda run_id: None)
    run = waiting_run(users, {"type": "ANY"})
    barrier = threading.Barrier(2)
    outcomes = {}

    def decide(name, decision):
        try:
            barrier.wait()
            approval_decide(actor=actor_of(users[name]), run=run, decision=decision, description="")
            outcomes[name] = "ok"
        except Conflict as exc:
            outcomes[name] = exc.status
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=("manager", "APPROVE")),
               threading.Thread(target=decide, args=("manager2", "DECLINE"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values(), key=str) == [409, "ok"]
    run.refresh_from_db()
    assert run.status in (RunStatus.IN_PROGRESS, RunStatus.DECLINED)
    assert Approval.objects.filter(run=run).count() == 1
    assert AuditEvent.objects.filter(run_id=run.id, verb=audit_choices.RUN_UPDATED).count() == 1
