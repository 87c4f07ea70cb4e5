"""Quotas at run request: perUser / perTeam rolling windows, liveEntitiesPerUser, atomic under races."""
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from actions.models import Run
from actions.services.quotas import QuotaExceeded
from actions.services.runs import run_request
from actions.tasks import run_dispatch_task
from audit import choices as audit_choices
from audit.models import AuditEvent
from catalog.models import Blueprint, Entity
from portal.actor import Actor
from portal.errors import PortalError
from tests.factories import ActionFactory, EntityFactory, UserFactory
from tests.support.runs import actor_of, catalog_setup, grant

pytestmark = pytest.mark.django_db


def request(user, action, entity="portal"):
    return run_request(actor=actor_of(user), action=action, properties={}, entity_identifier=entity)


def test_per_user_limit_refuses_and_says_when_it_frees_up(users):
    action = ActionFactory(quota={"perUser": {"limit": 2, "period": "day"}})
    grant("execute", action, users=[users["dev"], users["pay"]])
    first = request(users["dev"], action)
    request(users["dev"], action)
    with pytest.raises(QuotaExceeded) as refused:
        request(users["dev"], action)
    error = refused.value
    assert (error.status, error.code) == (429, "quota_exceeded")
    frees_up = first.created_at + timedelta(days=1)
    assert error.message == (f"quota.perUser: action 'deploy' allows at most 2 runs per user per day; "
                             f"the next frees up at {error.details['freesUpAt']}.")
    assert error.details["freesUpAt"].startswith(frees_up.strftime("%Y-%m-%dT%H:%M:%S"))
    assert Run.objects.filter(requested_by=users["dev"]).count() == 2
    (refusal,) = AuditEvent.objects.filter(verb=audit_choices.RUN_REFUSED)
    assert refusal.status == "FAILURE" and refusal.actor == "dev@example.com" and refusal.message == error.message
    assert refusal.identifier == "deploy" and refusal.diff == {"before": None, "after": None}
    request(users["pay"], action)  # another user's quota is their own


def test_rolling_window_frees_up(users):
    action = ActionFactory(quota={"perUser": {"limit": 1, "period": "hour"}})
    grant("execute", action, users=[users["dev"]])
    run = request(users["dev"], action)
    with pytest.raises(QuotaExceeded):
        request(users["dev"], action)
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=1, seconds=1))
    request(users["dev"], action)


def test_per_team_limit_counts_every_member(users):
    action = ActionFactory(quota={"perTeam": {"limit": 1, "period": "week"}})
    teammate = UserFactory(email="dev2@example.com", teams=["platform"])
    grant("execute", action, teams=["platform", "payments"])
    request(users["dev"], action)
    with pytest.raises(QuotaExceeded, match="^quota.perTeam: action 'deploy' allows at most 1 run per team per week"):
        request(teammate, action)
    request(users["pay"], action)  # payments has its own budget


def test_live_entities_per_user(users):
    action = ActionFactory(identifier="create_env", operation="CREATE", blueprint="Env", quota={"liveEntitiesPerUser": 2})
    grant("execute", action, users=[users["dev"]])
    env = Blueprint.objects.get(identifier="Env")
    EntityFactory(blueprint=env, identifier="mine-1")
    Entity.objects.filter(identifier="mine-1").update(created_by="dev@example.com")  # as if dev had registered it
    EntityFactory(blueprint=env, identifier="someone-elses")
    run_request(actor=actor_of(users["dev"]), action=action, properties={})  # 1 live + 1 under way = 2
    with pytest.raises(QuotaExceeded) as refused:
        run_request(actor=actor_of(users["dev"]), action=action, properties={})
    assert refused.value.message == ("quota.liveEntitiesPerUser: action 'create_env' allows at most 2 live 'Env' entities "
                                     "per user; you have 1 and 1 run under way. It frees up when one of your 'Env' "
                                     "entities is deleted.")
    from catalog.services.entities import entities_delete

    entities_delete(actor=Actor.system(), blueprint=env, identifiers=["mine-1"])
    run_request(actor=actor_of(users["dev"]), action=action, properties={})


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_cannot_squeeze_under_the_limit(monkeypatch):
    users = catalog_setup()
    monkeypatch.setattr(run_dispatch_task, "delay", lambda run_id: None)
    action = ActionFactory(quota={"perUser": {"limit": 2, "period": "day"}})
    grant("execute", action, users=[users["dev"]])
    threads_count = 6
    barrier = threading.Barrier(threads_count)
    outcomes = []

    def attempt():
        try:
            barrier.wait()
            request(users["dev"], action)
            outcomes.append(202)
        except PortalError as exc:
            outcomes.append(exc.status)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [202, 202, 429, 429, 429, 429]
    assert Run.objects.filter(action=action).count() == 2
    assert AuditEvent.objects.filter(verb=audit_choices.RUN_REFUSED).count() == 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_respect_live_entities(monkeypatch):
    users = catalog_setup()
    monkeypatch.setattr(run_dispatch_task, "delay", lambda run_id: None)
    action = ActionFactory(identifier="create_env", operation="CREATE", blueprint="Env", quota={"liveEntitiesPerUser": 1})
    grant("execute", action, users=[users["dev"]])
    barrier = threading.Barrier(4)
    outcomes = []

    def attempt():
        try:
            barrier.wait()
            run_request(actor=actor_of(users["dev"]), action=action, properties={})
            outcomes.append(202)
        except PortalError as exc:
            outcomes.append(exc.status)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [202, 429, 429, 429]
