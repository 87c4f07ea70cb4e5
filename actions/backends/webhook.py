"""The WEBHOOK backend: render the request from the invocation method, sign it, deliver it with retries.

Delivery goes through portal.outbound (private addresses refused at connect time, no redirects, a
timeout). Connection errors, timeouts, 429 (honouring Retry-After) and 5xx are retried with exponential
backoff by re-scheduling `webhook_deliver_task` up to WEBHOOK_MAX_ATTEMPTS tries in all; any other answer,
a refusal or a template error ends the run as FAILURE with a label saying why. Each try holds the run's delivery
lease (actions/services/runs.py): a worker killed or hung mid-try is noticed when it expires, and the run is
tried again (or ends) from there. A try is begun once (`run_delivery_begin`), so a retry delivered twice sends
once; a try cut short mid-send is sent again with the same body, runId included, which is what receivers
de-duplicate on. `synchronized: true` ends
the run from the HTTP status and stores the response; otherwise a 2xx leaves the run IN_PROGRESS for the
receiver to report back. `agent: true` runs are not pushed: an agent pulls them (issue 4).

Each try re-renders the request from the run (the run row holds only the redacted payload, and secrets
must not travel through the broker); templates are deterministic over the run, so tries send the same body.
The run stores the request as rendered for storage (actions.templating): template parts that read secrets
and literal credentials (actions.credentials) are "[redacted]", and so is their text in the answer.
"""
import email.utils
import json
import logging
import time
from dataclasses import dataclass

import requests
from celery import shared_task
from django.conf import settings

from actions.backends.signing import body_bytes, signature_headers
from actions.choices import RunStatus
from actions.credentials import invocation_masked, write_only
from actions.secrets import redact_secrets
from actions.templating import Rendered, TemplateError, TemplateRenderer, run_template_context, user_json
from actions.backends.outcome import backoff_seconds, backend_run_load, delivery_retry_run, run_end
from portal.outbound import OutboundRefused, outbound_session
from portal.datetimes import instant_text

logger = logging.getLogger(__name__)
MAX_RESPONSE_BYTES = 64 * 1024
METHODS = ("POST", "PUT", "PATCH", "DELETE", "GET")
USER_AGENT = "portal-webhook/1"


@dataclass
class WebhookRequest:
    """Each part as sent (`.value`) and as the run stores it (`.stored`)."""
    url: Rendered
    method: str
    headers: Rendered  # {name: string}
    body: Rendered  # JSON; None for GET
    synchronized: bool
    agent: bool
    revealed: tuple  # text rendered from secrets (actions.templating.TemplateRenderer.revealed)

    def payload(self, *, stored=False) -> dict:
        """What an agent claims (PORT_API.md claim-pending), or with `stored`, what the run stores."""
        part = 1 if stored else 0
        return {"type": "WEBHOOK", "url": self.url[part], "agent": self.agent, "synchronized": self.synchronized,
                "method": self.method, "headers": self.headers[part], "body": self.body[part]}


def classic_envelope(run, context, invocation) -> dict:
    """Port's body when the action configures none (`invocation`: the method as sent, or as stored)."""
    action = run.action
    return {
        "action": action.identifier,
        "resourceType": "run",
        "status": "TRIGGERED",
        "trigger": {"by": {"userId": run.requested_by.email if run.requested_by_id else None,
                           "user": user_json(run.requested_by)},
                    "origin": run.origin, "at": instant_text(run.created_at)},
        "context": {"entity": run.entity_identifier or None, "blueprint": action.blueprint_identifier or None,
                    "runId": run.id},
        "payload": {"entity": context["entity"],
                    "action": {"invocationMethod": invocation, "trigger": action.trigger},
                    "properties": run.properties or {}},
    }


def webhook_request_build(run, context) -> WebhookRequest:
    """Render url, headers and body of `run`'s WEBHOOK invocation method over `context`. TemplateError on failure."""
    invocation = run.action.invocation
    method = str(invocation.get("method") or "POST").upper()
    if method not in METHODS:
        raise TemplateError("method", f"must be one of {', '.join(METHODS)}, got {method!r}")
    renderer = TemplateRenderer(context, write_only=write_only)
    url = renderer.render(invocation.get("url"), "url")
    if not isinstance(url.value, str) or not url.value.lower().startswith(("http://", "https://")):
        raise TemplateError("url", f"must render to an http(s) URL, got {json.dumps(url.stored)[:200]}")
    headers = renderer.render(invocation.get("headers") or {}, "headers")
    if not isinstance(headers.value, dict):
        raise TemplateError("headers", "must render to an object")
    if method == "GET":
        body = Rendered(None, None)
    elif invocation.get("body") is not None:
        body = renderer.render(invocation["body"], "body")
    else:
        body = Rendered(classic_envelope(run, context, invocation),
                        classic_envelope(run, context, invocation_masked(invocation)))
    return WebhookRequest(url=url, method=method, body=body,
                          headers=Rendered(_header_values(headers.value), _header_values(headers.stored)),
                          synchronized=bool(invocation.get("synchronized")), agent=bool(invocation.get("agent")),
                          revealed=tuple(renderer.revealed))


def _header_values(headers):
    return {str(name): value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
            for name, value in headers.items()}


def _record(run, request, *, response=None, payload=None):
    from actions.services.runs import run_record_response

    return run_record_response(run=run, response=response, payload=payload, revealed=request.revealed)


def webhook_run(run) -> None:
    """The backend's entry point for a claimed IN_PROGRESS run (the claim counted the first try)."""
    if run.action.invocation.get("agent"):
        _store_agent_payload(run)
        return
    webhook_deliver(run.id, 1)


def _store_agent_payload(run):
    try:
        request = webhook_request_build(run, run_template_context(run))
    except TemplateError as exc:
        run_end(run, RunStatus.FAILURE, f"Template error in {exc}")
        return
    _record(run, request, payload=request.payload(stored=True))


def webhook_deliver(run_id, attempt: int) -> None:
    """Try `attempt` of delivering `run_id`; schedules the next try or ends the run as the answer says."""
    run = backend_run_load(run_id)
    if run is None or run.status != RunStatus.IN_PROGRESS:
        return  # reported back, timed out or deleted meanwhile: nothing left to deliver
    try:
        request = webhook_request_build(run, run_template_context(run))
    except TemplateError as exc:
        run_end(run, RunStatus.FAILURE, f"Template error in {exc}")
        return
    _record(run, request, payload=request.payload(stored=True))

    body = request.body.value
    raw = body_bytes(body) if body is not None else b""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **request.headers.value,
               **signature_headers(raw)}
    try:
        session = outbound_session(timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
        response = session.request(request.method, request.url.value, data=raw if body is not None else None,
                                    headers=headers, stream=True)
    except OutboundRefused as exc:
        run_end(run, RunStatus.FAILURE, redact_secrets(f"Webhook not sent: {exc}", request.revealed))
        return
    except requests.RequestException as exc:  # its text may quote the URL
        _retry_or_fail(run, attempt, redact_secrets(f"Webhook delivery failed ({_error_summary(exc)})", request.revealed))
        return
    with response:
        status = response.status_code
        if request.synchronized or not (200 <= status < 300):
            answer = _response_body(response)
        retry_after = response.headers.get("Retry-After")
    if 200 <= status < 300:
        if request.synchronized:
            _record(run, request, response=answer)
            run_end(run, RunStatus.SUCCESS, f"Webhook answered {status}")
        return
    if request.synchronized:
        _record(run, request, response=answer)
    if status == 429 or status >= 500:
        _retry_or_fail(run, attempt, f"Webhook answered {status}", retry_after=_retry_after_seconds(retry_after))
        return
    hint = " (redirects are not followed)" if 300 <= status < 400 else ""
    run_end(run, RunStatus.FAILURE, f"Webhook answered {status}{hint}")


def _retry_or_fail(run, attempt, label, *, retry_after=None):
    max_attempts = max(1, int(settings.WEBHOOK_MAX_ATTEMPTS))
    if attempt >= max_attempts:
        run_end(run, RunStatus.FAILURE, f"{label} after {attempt} attempt{'s' if attempt != 1 else ''}")
        return
    from actions.services.runs import run_delivery_retry

    delay = retry_delay(attempt, retry_after)
    logger.info("run %s: %s; try %d of %d in %.2fs", run.id, label, attempt + 1, max_attempts, delay)
    run_delivery_retry(run=run, attempt=attempt, countdown=delay, task=webhook_deliver_task)


def retry_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before try `attempt + 1`: Retry-After when the receiver gave one, else base × 2^(attempt-1); capped."""
    cap = float(settings.WEBHOOK_RETRY_MAX_SECONDS)
    if retry_after is not None:
        return min(max(retry_after, 0.0), cap)
    return backoff_seconds(attempt, base=settings.WEBHOOK_RETRY_BASE_SECONDS, cap=cap)


def _retry_after_seconds(value):
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time() if when is not None else None


def _response_body(response):
    """The answer as JSON if it parses, else text; at most MAX_RESPONSE_BYTES are read."""
    try:
        data = response.raw.read(MAX_RESPONSE_BYTES + 1, decode_content=True)
    except Exception as exc:  # a receiver that hangs up mid-body still answered with its status
        return f"[the response body could not be read: {_error_summary(exc)}]"
    truncated = len(data) > MAX_RESPONSE_BYTES
    data = data[:MAX_RESPONSE_BYTES]
    if not truncated:
        try:
            return json.loads(data)
        except ValueError:
            pass
    return data.decode(response.encoding or "utf-8", errors="replace")


def _error_summary(exc):
    if isinstance(exc, requests.Timeout):
        return f"timed out after {settings.WEBHOOK_TIMEOUT_SECONDS}s"
    text = str(exc)
    return text if len(text) <= 200 else text[:200] + "…"


@shared_task(name="actions.webhook_deliver", ignore_result=True)
def webhook_deliver_task(run_id, attempt):
    delivery_retry_run(run_id, attempt, webhook_deliver)
