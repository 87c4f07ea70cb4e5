"""The timer sweeper: due timers fire TIMER_PROPERTY_EXPIRED automations once, even with two sweepers at once."""
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from actions.models import Run
from actions.tasks import run_dispatch_task, timers_sweep_task
from actions.services.timers import timers_sweep
from catalog.models import Entity, Timer
from catalog.services.entities import PATCH, entity_write_one
from portal.actor import Actor
from portal.datetimes import instant_text
from tests.factories import EntityFactory
from tests.support.automations import automation, env_setup

SYSTEM = Actor.system()


def expiring(blueprint, identifier, delta, prop="certExpiry"):
    EntityFactory(blueprint=blueprint, identifier=identifier, properties={prop: instant_text(timezone.now() + delta)})
    return Timer.objects.get(entity__identifier=identifier, property=prop)


@pytest.mark.django_db
def test_a_due_timer_fires_its_automation_once(dispatched):
    blueprint = env_setup()
    automation("cert_expired", {"type": "TIMER_PROPERTY_EXPIRED", "blueprintIdentifier": "devEnv",
                                "propertyIdentifier": "certExpiry"})
    automation("ttl_expired", {"type": "TIMER_PROPERTY_EXPIRED", "blueprintIdentifier": "devEnv",
                               "propertyIdentifier": "ttl"})  # another property: not fired
    timer = expiring(blueprint, "env-1", timedelta(seconds=-1))
    expiring(blueprint, "env-2", timedelta(hours=1))  # not due

    assert timers_sweep_task() == 1
    assert timers_sweep_task() == 0  # an overlapping or later tick finds nothing left
    (run,) = Run.objects.all()
    assert run.action.identifier == "cert_expired" and run.origin == "AUTOMATION" and run.status == "IN_PROGRESS"
    assert run.entity.identifier == "env-1" and run.automation_depth == 0
    assert run.terminates_entity is None  # certExpiry is no TTL policy: nothing is torn down
    event = run.trigger_event
    assert event["action"] == "TIMER_PROPERTY_EXPIRED" and event["resourceType"] == "entity"
    assert event["context"] == {"blueprintIdentifier": "devEnv", "entityIdentifier": "env-1",
                                "propertyIdentifier": "certExpiry"}
    assert event["diff"]["after"]["identifier"] == "env-1"
    timer.refresh_from_db()
    assert timer.fired_at is not None
    assert Timer.objects.get(entity__identifier="env-2").fired_at is None


@pytest.mark.django_db
def test_a_timer_moved_into_the_future_before_the_sweep_does_not_fire(dispatched):
    blueprint = env_setup()
    automation("cert_expired", {"type": "TIMER_PROPERTY_EXPIRED", "blueprintIdentifier": "devEnv",
                                "propertyIdentifier": "certExpiry"})
    expiring(blueprint, "env-1", timedelta(seconds=-1))
    entity_write_one(actor=SYSTEM, blueprint=blueprint, identifier="env-1", mode=PATCH,
                     data={"properties": {"certExpiry": instant_text(timezone.now() + timedelta(days=1))}})
    assert timers_sweep() == 0
    assert Run.objects.count() == 0


@pytest.mark.django_db
def test_a_fired_timer_is_rearmed_by_a_new_expiry(dispatched):
    blueprint = env_setup()
    automation("cert_expired", {"type": "TIMER_PROPERTY_EXPIRED", "blueprintIdentifier": "devEnv",
                                "propertyIdentifier": "certExpiry"})
    expiring(blueprint, "env-1", timedelta(seconds=-10))
    assert timers_sweep() == 1
    expiring_again = instant_text(timezone.now() - timedelta(seconds=1))
    entity_write_one(actor=SYSTEM, blueprint=blueprint, identifier="env-1", mode=PATCH,
                     data={"properties": {"certExpiry": expiring_again}})
    assert timers_sweep() == 1
    assert Run.objects.count() == 2


@pytest.mark.django_db
def test_timer_conditions_apply(dispatched):
    blueprint = env_setup()
    automation("prod_cert", {"type": "TIMER_PROPERTY_EXPIRED", "blueprintIdentifier": "devEnv",
                             "propertyIdentifier": "certExpiry"},
               condition={"type": "JQ", "expressions": ['.diff.after.properties.tier == "prod"'], "combinator": "and"})
    for identifier, tier in (("env-1", "dev"), ("env-2", "prod")):
        EntityFactory(blueprint=blueprint, identifier=identifier, properties={
            "tier": tier, "certExpiry": instant_text(timezone.now() - timedelta(seconds=1))})
    assert timers_sweep() == 2  # both expiries are consumed
    assert [r.entity_identifier for r in Run.objects.all()] == ["env-2"]


@pytest.mark.django_db
def test_sweeps_in_batches(dispatched):
    blueprint = env_setup()
    automation("cert_expired", {"type": "TIMER_PROPERTY_EXPIRED", "blueprintIdentifier": "devEnv",
                                "propertyIdentifier": "certExpiry"})
    for i in range(7):
        expiring(blueprint, f"env-{i}", timedelta(seconds=-1))
    assert timers_sweep(batch_size=3, max_batches=2) == 6
    assert timers_sweep(batch_size=3) == 1
    assert Run.objects.count() == 7


@pytest.mark.django_db(transaction=True)
def test_two_sweepers_at_once_fire_each_expiry_once(monkeypatch):
    monkeypatch.setattr(run_dispatch_task, "delay", lambda run_id: None)
    blueprint = env_setup()
    automation("cert_expired", {"type": "TIMER_PROPERTY_EXPIRED", "blueprintIdentifier": "devEnv",
                                "propertyIdentifier": "certExpiry"})
    for i in range(30):
        expiring(blueprint, f"env-{i}", timedelta(seconds=-1))
    barrier = threading.Barrier(2)
    results, errors = [], []

    def sweeper():
        try:
            barrier.wait(timeout=10)
            results.append(timers_sweep(batch_size=4))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sum(results) == 30
    runs = list(Run.objects.values_list("entity_identifier", flat=True))
    assert len(runs) == 30 and len(set(runs)) == 30  # each expiry fired exactly once
    assert not Timer.objects.filter(fired_at__isnull=True).exists()
    assert Entity.objects.count() == 30
