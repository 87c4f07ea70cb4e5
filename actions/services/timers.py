"""The timer sweeper: due `Timer` rows fire their TIMER_PROPERTY_EXPIRED automations exactly once.

Each batch is one transaction: it claims due rows with `SELECT … FOR UPDATE SKIP LOCKED` (a second sweeper, or
an overlapping beat tick, skips them, and re-checks `fired_at` on rows committed meanwhile), marks them fired and
creates the automation runs in the same transaction — the runs are the outbox, dispatched on commit (and by the
re-dispatch sweep if that is lost), so an expiry is fired once or, if the batch rolls back, not at all and
retried on the next tick. A timer moved into the future before the sweep (TTL extended) is simply not due; the
entity service re-arms a timer (fired_at/warned_at NULL) whenever its expiry changes.
"""
import logging

from django.db import transaction
from django.utils import timezone

from actions.services.automations import automations_fire, automations_for_event, timer_event_build
from catalog.models import Timer

logger = logging.getLogger(__name__)
BATCH_SIZE = 20
MAX_BATCHES = 25  # per sweep; the next tick (30 s) takes the rest


def timers_sweep(*, batch_size=BATCH_SIZE, max_batches=MAX_BATCHES) -> int:
    """Fire due timers in batches of `batch_size`; return how many timers were fired."""
    fired = 0
    for _ in range(max_batches):
        claimed = _sweep_batch(batch_size)
        fired += claimed
        if claimed < batch_size:
            break
    return fired


@transaction.atomic
def _sweep_batch(batch_size) -> int:
    now = timezone.now()
    timers = list(Timer.objects.select_for_update(skip_locked=True, of=("self",)).select_related("entity__blueprint")
                  .filter(expires_at__lte=now, fired_at__isnull=True).order_by("expires_at", "id")[:batch_size])
    if not timers:
        return 0
    Timer.objects.filter(pk__in=[t.pk for t in timers]).update(fired_at=now)
    for timer in timers:
        timer.fired_at = now
        timer_fire(timer=timer, at=now)
    return len(timers)


def timer_fire(*, timer, at) -> list:
    """Fire the automations of one claimed timer (inside the claim's transaction). For a TTL-policy property the
    runs are teardowns of the entity (`terminates_entity`); a TTL expiry that no automation takes up is marked as
    failed to terminate, so it does not linger unnoticed."""
    from actions.services.ttl import ttl_policy_action, ttl_termination_unhandled
    from catalog.selectors.entities import entities_json

    entity = timer.entity
    blueprint = entity.blueprint
    event = timer_event_build(entity_json=entities_json([entity], user=None)[0], blueprint_identifier=blueprint.identifier,
                              entity_identifier=entity.identifier, property=timer.property, at=at)
    automations = automations_for_event(event)
    is_ttl = ttl_policy_action(blueprint_identifier=blueprint.identifier, property=timer.property) is not None
    runs = automations_fire(event=event, automations=automations, entity=entity,
                            terminates_entity=entity if is_ttl else None)
    logger.info("timer %s.%s of %s:%s expired: %d run(s)", blueprint.identifier, timer.property, blueprint.identifier,
                entity.identifier, len(runs))
    if is_ttl and not runs:
        ttl_termination_unhandled(timer=timer)
    return runs
