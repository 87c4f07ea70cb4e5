"""Celery tasks of the actions app: thin — they load ids and call services.

Beat (portal/settings.py CELERY_BEAT_SCHEDULE): approval expiry every 30 s, run timeouts every 60 s, expired
delivery leases every 5 s. Work queued by services runs through the outbox (portal/outbox.py): the outbox's
worker task claims each message and calls the task below as a function.
"""
import logging

from celery import shared_task
from django.utils import timezone

from actions.choices import RunStatus
from actions.models import Run
# Registered at import so a worker can run a retry before it has dispatched anything itself.
from actions.backends.webhook import webhook_deliver_task  # noqa: F401

logger = logging.getLogger(__name__)
SWEEP_LIMIT = 500


@shared_task
def run_dispatch_task(run_id):
    """Hand an IN_PROGRESS run to its backend, once: the claim is an idempotent UPDATE (see run_dispatch_claim)."""
    from actions.services.runs import run_dispatch_claim

    if not run_dispatch_claim(run_id=run_id):
        logger.info("run %s: not claimable (already dispatched, or no longer in progress)", run_id)
        return False
    from actions.backends import backend_dispatch

    backend_dispatch(run_id)
    return True


@shared_task
def demo_receiver_work_task(kind, body):
    """The built-in demo receiver's work for one accepted webhook (actions/demo_receiver.py)."""
    from actions.demo_receiver import demo_receiver_work

    demo_receiver_work(kind=kind, body=body)


@shared_task
def run_approvals_expire_task():
    from actions.services.approvals import approval_expire

    due = (Run.objects.filter(status=RunStatus.WAITING_FOR_APPROVAL, approval_deadline__lte=timezone.now())
           .order_by("approval_deadline").values_list("id", flat=True)[:SWEEP_LIMIT])
    return sum(1 for run_id in list(due) if approval_expire(run_id=run_id) is not None)


@shared_task
def run_timeouts_task():
    from actions.services.runs import run_time_out

    due = (Run.objects.filter(status=RunStatus.IN_PROGRESS, timeout_at__lte=timezone.now())
           .order_by("timeout_at").values_list("id", flat=True)[:SWEEP_LIMIT])
    return sum(1 for run_id in list(due) if run_time_out(run_id=run_id) is not None)


@shared_task
def run_delivery_leases_task():
    """Beat, every 5 s: runs whose delivery attempt outlived its lease are tried again, or fail."""
    from actions.services.runs import run_delivery_leases_expire

    return run_delivery_leases_expire(limit=SWEEP_LIMIT)


@shared_task
def run_approval_notify_task(run_id):
    """POST the run's JSON to the action's approvalNotification webhook (type webhook, format json). A connection
    error is raised: the outbox tries again with backoff."""
    from actions.serializers import run_json
    from portal.outbound import OutboundRefused, outbound_session

    run = Run.objects.select_related("action", "requested_by", "entity").filter(pk=run_id).first()
    if run is None or run.status != RunStatus.WAITING_FOR_APPROVAL:
        return False
    url = (run.action.approval_notification or {}).get("url")
    if not url:
        return False
    import requests

    try:
        response = outbound_session().post(url, json={"run": run_json(run)}, timeout=10, allow_redirects=False)
    except OutboundRefused:  # a refused destination stays refused: no retry
        logger.warning("run %s: approval notification to %s refused", run_id, url, exc_info=True)
        return False
    except requests.ConnectionError as exc:
        raise ConnectionError(str(exc)) from exc
    except requests.RequestException:
        logger.warning("run %s: approval notification to %s failed", run_id, url, exc_info=True)
        return False
    if response.status_code >= 400:
        logger.warning("run %s: approval notification to %s answered %s", run_id, url, response.status_code)
    return response.status_code < 400


# --- Slack notifications (actions/notifications.py) ------------------------------------------------------
# No Celery retries: slack-sdk already retried rate limits and connection errors, and a second try of a
# message Slack may have accepted would post it twice.

@shared_task
def run_approval_waiting_notify_task(run_id):
    from actions.notifications import notify_approval_waiting

    return notify_approval_waiting(run_id)


@shared_task
def run_ended_notify_task(run_id):
    from actions.notifications import notify_run_ended

    return notify_run_ended(run_id)


@shared_task
def ttl_warning_notify_task(entity_id, property):
    from actions.notifications import notify_ttl_warning

    return notify_ttl_warning(entity_id, property)


@shared_task
def termination_failed_notify_task(entity_id, run_id):
    from actions.notifications import notify_termination_failed

    return notify_termination_failed(entity_id, run_id)


# --- automations, timers and TTL (actions/services/automations.py, timers.py, ttl.py) ---------------------

@shared_task
def automations_fire_task(event):
    """Fire the automations listening for an entity or run event (queued as outbox rows by the subscribers, in the writer's transaction)."""
    from actions.services.automations import automations_fire

    return [run.id for run in automations_fire(event=event)]


@shared_task
def timers_sweep_task():
    """Beat, every 30 s: due timers fire their TIMER_PROPERTY_EXPIRED automations, once each."""
    from actions.services.timers import timers_sweep

    return timers_sweep()


@shared_task
def ttl_warnings_task():
    """Beat, every 60 s: owners of TTLs expiring within NotificationSettings.ttl_warning_hours are warned once."""
    from actions.services.ttl import ttl_warnings_send

    return ttl_warnings_send()


@shared_task
def ttl_termination_settle_task(run_id):
    """A teardown run ended: delete its entity (SUCCESS) or keep it, marked (FAILURE)."""
    from actions.services.ttl import ttl_termination_settle

    return ttl_termination_settle(run_id=run_id)
