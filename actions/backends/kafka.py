"""The KAFKA backend: a run is published to a topic on the user's cluster (portal/kafka.py), key the run id, value
the JSON body the WEBHOOK backend would send (the action's rendered `body`, else Port's run message); the user's
consumers report back through the runs API. `{"type": "KAFKA", "topic": "…"}`, topic default `<organization>.runs`.

Agent runs (WEBHOOK `agent: true`) take this path too when the organization's agent streams from Kafka
(actions/backends/kafka_agent.py builds their message): Port's execution agent consumes them in its Kafka mode.

Publishing goes through the runs' delivery attempts and lease (actions/services/runs.py), like webhooks: the claim
is attempt 1, a publish that is not acknowledged (broker down, timeout) schedules the next attempt with backoff up to
KAFKA_MAX_ATTEMPTS, and a worker that dies mid-publish is noticed when its lease expires. The run is marked
published (`published_to`: topic, partition, offset) only by the broker's delivery report; an attempt that finds
it published sends nothing. Every attempt sends the same key and value (templates are deterministic over the run),
which is what consumers de-duplicate on if a report was lost after the broker wrote the message.
"""
import logging

from celery import shared_task
from django.conf import settings

from actions.backends.kafka_agent import agent_message
from actions.backends.outcome import backend_run_load, backoff_seconds, delivery_retry_run, run_end
from actions.backends.webhook import classic_envelope
from actions.choices import RunStatus
from actions.credentials import invocation_masked, write_only
from actions.secrets import redact_secrets
from actions.templating import Rendered, TemplateError, TemplateRenderer, run_template_context
from portal.kafka import KafkaUnavailable, kafka_publish, runs_topic, value_bytes

logger = logging.getLogger(__name__)


def run_message(run, context) -> tuple:
    """(topic, Rendered value) of a KAFKA run: the rendered `body`, else Port's run message. TemplateError."""
    invocation = run.action.invocation
    topic = invocation.get("topic") or runs_topic()
    renderer = TemplateRenderer(context, write_only=write_only)
    if invocation.get("body") is not None:
        return topic, renderer.render(invocation["body"], "body"), tuple(renderer.revealed)
    return topic, Rendered(classic_envelope(run, context, invocation),
                           classic_envelope(run, context, invocation_masked(invocation))), ()


def kafka_run(run) -> None:
    """The backend's entry point for a claimed IN_PROGRESS run (the claim counted attempt 1)."""
    kafka_publish_attempt(run.id, 1)


def kafka_publish_attempt(run_id, attempt: int) -> None:
    """Attempt `attempt` of publishing `run_id`: marks it published, schedules the next attempt, or ends the run."""
    from actions.services.runs import run_record_published

    run = backend_run_load(run_id)
    if run is None or run.status != RunStatus.IN_PROGRESS or run.published_to is not None:
        return  # reported back, timed out, deleted or already published: nothing left to send
    context = run_template_context(run)
    try:
        if run.action.invocation.get("type") == "KAFKA":
            topic, value, revealed = run_message(run, context)
        else:
            topic, value, revealed = runs_topic(), agent_message(run, context), ()
    except TemplateError as exc:
        run_end(run, RunStatus.FAILURE, f"Template error in {exc}")
        return
    try:
        delivery = kafka_publish(topic, run.id, value_bytes(value.value))
    except KafkaUnavailable as exc:
        _retry_or_fail(run, attempt, redact_secrets(f"Kafka publish to {topic} failed ({exc})", revealed))
        return
    run_record_published(run=run, delivery=delivery.as_json(), payload=value.stored)


def _retry_or_fail(run, attempt, label):
    max_attempts = max(1, int(settings.KAFKA_MAX_ATTEMPTS))
    if attempt >= max_attempts:
        run_end(run, RunStatus.FAILURE, f"{label} after {attempt} attempt{'s' if attempt != 1 else ''}")
        return
    from actions.services.runs import run_delivery_retry

    delay = retry_delay(attempt)
    logger.warning("run %s: %s; attempt %d of %d in %.2fs", run.id, label, attempt + 1, max_attempts, delay)
    run_delivery_retry(run=run, attempt=attempt, countdown=delay, task=kafka_publish_task)


def retry_delay(attempt: int) -> float:
    return backoff_seconds(attempt, base=settings.KAFKA_RETRY_BASE_SECONDS, cap=settings.KAFKA_RETRY_MAX_SECONDS)


@shared_task(name="actions.kafka_publish", ignore_result=True)
def kafka_publish_task(run_id, attempt):
    delivery_retry_run(run_id, attempt, kafka_publish_attempt)
