"""The message of an agent run published to Kafka, in the shape Port's execution agent reads in its Kafka mode
(port-labs/port-agent, app/streamers/kafka/ and app/invokers/webhook_invoker.py):

- it reads `payload.action.invocationMethod` of a message on the runs topic and skips it unless `agent` is true;
  it calls `url` with `method` (POST by default), sending the whole message as the body, and reports back on
  `context.runId` (synchronized: the response and SUCCESS/FAILURE from the HTTP status);
- it verifies `headers["X-Port-Signature"]`: with `X-Port-Signature` and `X-Port-Timestamp` removed from
  `headers`, the message re-serialized compactly (non-ASCII kept) and signed as Port signs webhooks
  ("v1," + base64 HMAC-SHA256 of "<timestamp>.<json>") with the agent's own client secret
  (KAFKA_AGENT_CLIENT_SECRET, or the admin Secret of that name).

So the value is Port's run message with the rendered URL in its invocation method and the signed `headers` last.
"""
import json
import time

from django.conf import settings

from actions.backends.signing import signature
from actions.backends.webhook import classic_envelope, webhook_request_build
from actions.templating import Rendered, TemplateError

AGENT_SECRET_NAME = "KAFKA_AGENT_CLIENT_SECRET"


def agent_signing_secret() -> str:
    from actions.secrets import secret_value

    return settings.KAFKA_AGENT_CLIENT_SECRET or secret_value(AGENT_SECRET_NAME) or ""


def agent_message(run, context, *, now=None) -> Rendered:
    """The run message as sent (signed) and as the run stores it. TemplateError when it cannot be built."""
    secret = agent_signing_secret()
    if not secret:
        raise TemplateError("", f"{AGENT_SECRET_NAME} is not set: the agent could not verify the message")
    request = webhook_request_build(run, context)
    sent, stored = (classic_envelope(run, context, _invocation(request, part)) for part in (0, 1))
    timestamp = str(int(now if now is not None else time.time()))
    unsigned = {**sent, "headers": {}}
    raw = json.dumps(unsigned, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    headers = {"X-Port-Signature": signature(secret, timestamp, raw), "X-Port-Timestamp": timestamp}
    return Rendered({**sent, "headers": headers}, {**stored, "headers": {"X-Port-Timestamp": timestamp}})


def _invocation(request, part):
    return {"type": "WEBHOOK", "url": request.url[part], "agent": True, "synchronized": request.synchronized,
            "method": request.method}
