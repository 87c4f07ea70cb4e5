"""Invocation backends: `backend_dispatch(run_id)` hands a claimed IN_PROGRESS run to the backend its action's
invocation method names. Backends report their outcome through actions.services.runs (run_finish,
run_record_response); a backend that only starts work elsewhere leaves the run IN_PROGRESS for the
receiver to report back (or for the run timeout)."""
from actions.backends.extend_ttl import extend_ttl_run
from actions.backends.github import github_configured, github_run
from actions.backends.gitlab import gitlab_run
from actions.backends.kafka import kafka_publish_task, kafka_run, retry_delay as kafka_retry_delay
from actions.backends.outcome import backend_run_load, run_end
from actions.backends.slack import slack_run
from actions.backends.upsert_entity import upsert_entity_run
from actions.slack import slack_configured
from actions.backends.webhook import webhook_deliver_task, webhook_run  # noqa: F401 — registers the Celery task
from actions.choices import RunStatus
from django.conf import settings
from portal.kafka import kafka_configured
from portal.organization import agent_streams_kafka

BACKENDS = {
    "WEBHOOK": webhook_run,
    "UPSERT_ENTITY": upsert_entity_run,
    "SLACK": slack_run,
    "GITHUB": github_run,
    "GITLAB": gitlab_run,
    "EXTEND_TTL": extend_ttl_run,
    "KAFKA": kafka_run,
}


def publishes_to_kafka(action) -> bool:
    """KAFKA actions, and agent runs while the organization's agent streams from Kafka (PATCH /v1/organization)."""
    invocation = action.invocation
    kind = invocation.get("type")
    return kind == "KAFKA" or kind == "WEBHOOK" and bool(invocation.get("agent")) and agent_streams_kafka()


def backend_unavailable(action) -> str | None:
    """Why runs of `action` cannot be requested on this portal yet (its backend lacks configuration), or None.
    Checked when a person requests a run, so an action like the starter `deploy` is visibly off, not failing."""
    kind = action.invocation.get("type")
    if kind == "GITHUB" and not github_configured():
        return "GitHub is not configured: set GITHUB_TOKEN, or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY."
    if kind == "SLACK" and not slack_configured():
        return "Slack is not configured: set SLACK_BOT_TOKEN."
    if kind == "KAFKA" and not kafka_configured():
        return "Kafka is not configured: set KAFKA_BROKERS."
    return None


def backend_dispatch(run_id: str) -> None:
    from actions.services.runs import run_delivery_settled

    run = backend_run_load(run_id)
    if run is None or run.status != RunStatus.IN_PROGRESS:
        return
    kind = run.action.invocation.get("type")
    backend = kafka_run if publishes_to_kafka(run.action) else BACKENDS.get(kind)
    if backend is None:
        run_end(run, RunStatus.FAILURE, f"The {kind} backend is not configured on this portal yet.")
        return
    backend(run)
    run_delivery_settled(run_id=run.id, attempt=1)  # the claim's attempt returned: its lease ends


def delivery_max_attempts(action) -> int:
    """How many attempts a run of `action` gets to be delivered (what `waitingFor` counts against)."""
    kind = action.invocation.get("type")
    if publishes_to_kafka(action):
        return max(1, int(settings.KAFKA_MAX_ATTEMPTS))
    if kind == "WEBHOOK":
        return max(1, int(settings.WEBHOOK_MAX_ATTEMPTS))
    if kind in ("GITHUB", "GITLAB"):
        return max(1, int(settings.CI_DISPATCH_MAX_ATTEMPTS))
    return 1


def redelivery(run):
    """(task, countdown) that tries `run` again after its delivery lease expired, or None when its backend cannot
    be tried again safely (a CI dispatch or a catalog write may have happened: the run ends instead)."""
    invocation = run.action.invocation
    if publishes_to_kafka(run.action):
        return kafka_publish_task, kafka_retry_delay(run.attempts)
    if invocation.get("type") == "WEBHOOK" and not invocation.get("agent"):
        from actions.backends.webhook import retry_delay

        return webhook_deliver_task, retry_delay(run.attempts)
    return None
