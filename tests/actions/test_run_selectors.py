"""The actions app's selectors behind the web pages (runs, approvals, lock actions, the actions runnable on an
entity): each returns what the user may see and nothing they may not.

The world (tests/support/runs.py): services `portal` (team platform: dev@) and `checkout` (team payments: pay@),
readable only by their owning team here; managers@ approve the action `deploy`; other@ is in no team."""
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from actions.choices import RunStatus
from actions.models import Approval, Run, RunLog
from actions.selectors.approvals import (approval_queue_visible_to, approvals_waiting_count_and_first,
                                         decisions_taken_by, may_ever_approve, run_as_decided)
from actions.selectors.entity_actions import actions_runnable_on
from actions.selectors.locks import lock_actions
from actions.selectors.runs import (run_decisions, run_log_lines, run_status_reload, run_visible_to, run_waits_on,
                                    runs_of_entity_visible_to, runs_requested_by_visible_to)
from catalog.models import Blueprint, Entity
from catalog.services.permissions import blueprint_permissions_update
from portal.actor import Actor
from tests.factories import ActionFactory, RunFactory
from tests.support.runs import catalog_setup, grant

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()
TIER_TWO = {"combinator": "and", "rules": [{"property": "tier", "operator": "=", "value": "2"}]}


@pytest.fixture
def selector_users(db):
    users = catalog_setup()
    blueprint_permissions_update(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="Service"),
                                 data={"entities": {"read": {"roles": [], "ownedByTeam": True}}})
    return users


@pytest.fixture
def selector_action(selector_users):
    action = ActionFactory(identifier="deploy", required_approval=True)
    grant("execute", action, users=[selector_users["dev"], selector_users["pay"]])
    grant("approve", action, teams=["managers"])
    return action


def service(identifier):
    return Entity.objects.get(blueprint__identifier="Service", identifier=identifier)


def run(selector_action, requester, identifier, *, entity="portal", status=RunStatus.WAITING_FOR_APPROVAL, age=0):
    made = RunFactory(id=identifier, action=selector_action, requested_by=requester, status=status, required_approval=True,
                      blueprint_identifier="Service", entity=service(entity), entity_identifier=entity)
    Run.objects.filter(pk=made.pk).update(created_at=timezone.now() - timedelta(minutes=age))
    return Run.objects.get(pk=made.pk)


def ids(runs):
    return [r.id for r in runs]


def test_run_visible_to_the_requester_the_approvers_and_readers_of_its_entity_only(selector_users, selector_action):
    mine = run(selector_action, selector_users["dev"], "r_mine")
    assert run_visible_to(selector_users["dev"], "r_mine") == mine
    assert run_visible_to(selector_users["manager"], "r_mine") == mine  # may decide it
    assert run_visible_to(selector_users["admin"], "r_mine") == mine
    assert run_visible_to(selector_users["pay"], "r_mine") is None  # neither theirs, nor theirs to decide, nor their entity
    assert run_visible_to(selector_users["other"], "r_mine") is None
    assert run_visible_to(AnonymousUser(), "r_mine") is None
    assert run_visible_to(selector_users["dev"], "r_nope") is None


def test_runs_requested_by_visible_to_are_the_users_own_newest_first(selector_users, selector_action):
    run(selector_action, selector_users["dev"], "r_old", status=RunStatus.SUCCESS, age=30)
    run(selector_action, selector_users["dev"], "r_new", age=10)
    run(selector_action, selector_users["pay"], "r_theirs", entity="checkout", age=20)
    assert ids(runs_requested_by_visible_to(selector_users["dev"], limit=10)) == ["r_new", "r_old"]
    assert ids(runs_requested_by_visible_to(selector_users["dev"], limit=1)) == ["r_new"]
    assert ids(runs_requested_by_visible_to(selector_users["dev"], limit=10, status=RunStatus.SUCCESS)) == ["r_old"]
    newest = Run.objects.get(pk="r_new")
    assert ids(runs_requested_by_visible_to(selector_users["dev"], limit=10, before=(newest.created_at, newest.id))) == ["r_old"]
    assert ids(runs_requested_by_visible_to(selector_users["manager"], limit=10)) == []  # decides them, did not request them


def test_runs_of_entity_visible_to_hide_runs_the_user_may_not_see(selector_users, selector_action):
    run(selector_action, selector_users["dev"], "r_portal")
    run(selector_action, selector_users["pay"], "r_checkout", entity="checkout")
    assert ids(runs_of_entity_visible_to(selector_users["dev"], service("portal"), limit=10)) == ["r_portal"]
    assert ids(runs_of_entity_visible_to(selector_users["pay"], service("portal"), limit=10)) == []
    assert ids(runs_of_entity_visible_to(selector_users["admin"], service("checkout"), limit=10)) == ["r_checkout"]


def test_decisions_and_log_lines_of_a_run_in_their_order(selector_users, selector_action):
    waiting = run(selector_action, selector_users["dev"], "r_waiting")
    Approval.objects.create(run=waiting, approver=selector_users["manager2"], decision="APPROVE")
    Approval.objects.create(run=waiting, approver=selector_users["manager"], decision="DECLINE", description="not today")
    for n in range(3):
        RunLog.objects.create(run=waiting, message=f"line {n}")
    assert [d.approver.email for d in run_decisions(waiting)] == ["manager2@example.com", "manager@example.com"]
    assert [line.message for line in run_log_lines(waiting, limit=2)] == ["line 2", "line 1"]
    Run.objects.filter(pk=waiting.pk).update(status=RunStatus.DECLINED, status_label="Declined by manager")
    fresh, decisions = run_as_decided(waiting)
    assert fresh.status == RunStatus.DECLINED and [d.decision for d in decisions] == ["APPROVE", "DECLINE"]
    assert run_status_reload(waiting).status_label == "Declined by manager"


def test_the_approval_queue_holds_runs_waiting_on_the_user_and_not_yet_decided_by_them(selector_users, selector_action):
    first = run(selector_action, selector_users["dev"], "r_first", age=20)
    run(selector_action, selector_users["pay"], "r_second", entity="checkout", age=10)
    run(selector_action, selector_users["dev"], "r_done", status=RunStatus.SUCCESS)
    Approval.objects.create(run=first, approver=selector_users["manager2"], decision="APPROVE")
    queue = approval_queue_visible_to(selector_users["manager"], limit=10)
    assert ids(queue) == ["r_first", "r_second"]
    assert [d.approver.email for d in queue[0].approvals.all()] == ["manager2@example.com"]
    assert approvals_waiting_count_and_first(selector_users["manager"], limit=1) == (2, [first])
    assert ids(approval_queue_visible_to(selector_users["manager2"], limit=10)) == ["r_second"]  # decided the first
    assert approval_queue_visible_to(selector_users["dev"], limit=10) == []  # not an approver, and never of their own runs
    assert approval_queue_visible_to(selector_users["pay"], limit=10) == []
    assert run_waits_on(selector_users["manager"], first) is True
    assert run_waits_on(selector_users["manager2"], first) is False
    assert run_waits_on(selector_users["dev"], first) is False


def test_decisions_taken_by_are_the_users_own(selector_users, selector_action):
    first = run(selector_action, selector_users["dev"], "r_first")
    second = run(selector_action, selector_users["pay"], "r_second", entity="checkout")
    mine = Approval.objects.create(run=first, approver=selector_users["manager"], decision="APPROVE")
    Approval.objects.create(run=second, approver=selector_users["manager2"], decision="DECLINE")
    assert decisions_taken_by(selector_users["manager"], limit=10) == [mine]
    assert decisions_taken_by(selector_users["dev"], limit=10) == []


def test_may_ever_approve(selector_users, selector_action):
    assert may_ever_approve(selector_users["manager"]) is True
    assert may_ever_approve(selector_users["admin"]) is True
    assert may_ever_approve(selector_users["dev"]) is False
    ActionFactory(identifier="owned", permission_settings={"ownedByTeam": {"approve": True}})
    assert may_ever_approve(selector_users["dev"]) is True  # their team may own an entity of its runs
    assert may_ever_approve(selector_users["other"]) is False  # in no team


def test_lock_actions_are_the_published_self_service_ones(db):
    lock = ActionFactory(identifier="lock_service", blueprint="runningService")
    ActionFactory(identifier="unlock_service", blueprint="runningService", publish=False)
    ActionFactory(identifier="lock_environment", blueprint="environment", trigger_type="automation")
    ActionFactory(identifier="someone_elses", blueprint="environment")
    assert lock_actions() == {("service", "lock"): lock}


def test_actions_runnable_on_an_entity_are_granted_and_match_their_condition(selector_users):
    deploy = ActionFactory(identifier="deploy")
    grant("execute", deploy, users=[selector_users["dev"]])
    tier_two_only = ActionFactory(identifier="tier_two_only", condition=TIER_TWO)
    grant("execute", tier_two_only, users=[selector_users["dev"], selector_users["pay"]])
    owned = ActionFactory(identifier="owned", operation="DELETE", permission_settings={"ownedByTeam": {"execute": True}})
    ActionFactory(identifier="create", operation="CREATE")
    ActionFactory(identifier="draft", publish=False)
    portal, checkout = service("portal"), service("checkout")
    platform, payments = {t.pk for t in portal.teams.all()}, {t.pk for t in checkout.teams.all()}
    assert actions_runnable_on(selector_users["dev"], portal, platform) == [deploy, owned]  # portal is tier 1
    assert actions_runnable_on(selector_users["pay"], portal, platform) == []  # not granted deploy, not an owner
    assert actions_runnable_on(selector_users["pay"], checkout, payments) == [tier_two_only, owned]
    assert actions_runnable_on(selector_users["other"], portal, platform) == []
    # An admin runs anything published (not `draft`) of the operations shown (not `create`) whose condition matches.
    assert actions_runnable_on(selector_users["admin"], portal, platform) == [deploy, owned]
