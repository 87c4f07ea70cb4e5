"""The reference execution agent: pulls the portal's agent runs and forwards them inside a private network.

    PORTAL_URL=https://portal.example.com PORTAL_CLIENT_ID=... PORTAL_CLIENT_SECRET=... \\
    WEBHOOK_SIGNING_SECRET=... python -m portal.agent

It needs no inbound connection: every poll it claims pending runs (`POST /v1/actions/runs/claim-pending`),
acks each one (`PATCH /v1/actions/runs/ack`; a run another agent acked first is skipped), sends the
run's rendered body to its URL (or AGENT_FORWARD_URL) with the run's method and headers, signed as the
portal signs webhooks (`x-port-timestamp`, `x-port-signature`), stores the receiver's answer on the run
(`PATCH /v1/actions/runs/{id}/response`) and, for `synchronized` actions, ends the run from the HTTP status.
An answer other than 2xx, or no answer, ends the run as FAILURE either way: the receiver will not report.

Standalone on purpose (the standard library and `requests`, no Django): copy this file next to the
receivers and run `python agent.py` there. Settings come from the environment or the command line
(`--help`); SIGINT/SIGTERM stop it after the run in hand; `--once` polls once and exits.
"""
import argparse
import base64
import hashlib
import hmac
import json
import logging
import os
import signal
import sys
import threading
import time

import requests

logger = logging.getLogger("portal.agent")
USER_AGENT = "portal-agent/1"
MAX_RESPONSE_BYTES = 64 * 1024
MAX_BACKOFF_SECONDS = 60.0


# --- signing: the same algorithm as actions/backends/signing.py -----------------------------------

def body_bytes(body) -> bytes:
    """The body as sent and signed: compact, non-ASCII escaped, keys in the template's order."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def signature(secret: str, timestamp: str, raw_body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + raw_body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(secret: str, raw_body: bytes, now=None) -> dict:
    timestamp = str(int(now if now is not None else time.time()))
    return {"x-port-timestamp": timestamp, "x-port-signature": signature(secret, timestamp, raw_body)}


# --- the portal's API -----------------------------------------------------------------------------

class PortalClient:
    """The agent's calls to the portal; each asks for a fresh token first, as Port's agent does (the
    portal hands out the same token while it is valid, so this costs one cheap call)."""

    def __init__(self, url, client_id, client_secret, *, timeout=30.0, session=None):
        self.url = url.rstrip("/")
        self.client_id, self.client_secret = client_id, client_secret
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.trust_env = False

    def _headers(self, **extra) -> dict:
        response = self.session.post(f"{self.url}/v1/auth/access_token", timeout=self.timeout,
                                     json={"clientId": self.client_id, "clientSecret": self.client_secret})
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['accessToken']}", "User-Agent": USER_AGENT, **extra}

    def _call(self, method, path, body, **headers):
        return self.session.request(method, f"{self.url}/v1{path}", json=body, timeout=self.timeout,
                                    headers=self._headers(**headers))

    def claim(self, installation_id, limit, visibility_timeout_ms=None) -> list:
        body = {"installationId": installation_id, "limit": limit, "invocationMethod": "WEBHOOK"}
        if visibility_timeout_ms:
            body["visibilityTimeoutMs"] = visibility_timeout_ms
        response = self._call("POST", "/actions/runs/claim-pending", body, **{"x-port-reserved-usage": "true"})
        response.raise_for_status()
        return response.json().get("runs", [])

    def ack(self, run_id) -> int:
        response = self._call("PATCH", "/actions/runs/ack", {"runIds": [run_id]}, **{"x-port-reserved-usage": "true"})
        if response.status_code == 409:  # another agent acked it first, or it ended meanwhile
            return 0
        response.raise_for_status()
        return response.json().get("ackedCount", 0)

    def record_response(self, run_id, answer):
        self._call("PATCH", f"/actions/runs/{run_id}/response", {"response": answer}).raise_for_status()

    def report(self, run_id, status, label):
        response = self._call("PATCH", f"/actions/runs/{run_id}", {"status": status, "statusLabel": label})
        if response.status_code == 409:  # ended meanwhile (timed out, or the receiver reported first)
            logger.warning("run %s: not marked %s: %s", run_id, status, response.text[:200])
            return
        response.raise_for_status()

    def log(self, run_id, message):
        self._call("POST", f"/actions/runs/{run_id}/logs", {"message": message}).raise_for_status()


# --- the agent ------------------------------------------------------------------------------------

class Agent:
    def __init__(self, client, *, installation_id, signing_secret="", forward_url="", limit=10,
                 visibility_timeout_ms=None, poll_interval=5.0, timeout=30.0):
        self.client = client
        self.installation_id = installation_id
        self.signing_secret = signing_secret
        self.forward_url = forward_url
        self.limit = limit
        self.visibility_timeout_ms = visibility_timeout_ms
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.stopping = threading.Event()
        self.session = requests.Session()
        self.session.trust_env = False

    def stop(self, *_):
        logger.info("stopping after the run in hand")
        self.stopping.set()

    def poll_once(self) -> int:
        """Claim, ack and forward one batch; returns how many runs were forwarded."""
        runs = self.client.claim(self.installation_id, self.limit, self.visibility_timeout_ms)
        forwarded = 0
        for run in runs:
            if self.stopping.is_set():
                break  # unacked claims return to the pool when their visibility timeout passes
            run_id = run.get("id")
            payload = run.get("payload") or {}
            if not run_id or not self._payload_usable(payload):
                logger.error("run %s: skipped, its payload is not a WEBHOOK agent payload", run_id)
                continue
            if self.client.ack(run_id) < 1:
                logger.info("run %s: not acked (another agent has it); skipped", run_id)
                continue
            self.forward(run_id, payload)
            forwarded += 1
        return forwarded

    @staticmethod
    def _payload_usable(payload) -> bool:
        body_ok = isinstance(payload.get("body"), dict) or (payload.get("body") is None and payload.get("method") == "GET")
        return payload.get("type") == "WEBHOOK" and bool(payload.get("url")) and bool(payload.get("agent")) and body_ok

    def forward(self, run_id, payload):
        """Send the run to its receiver, then report the answer back to the portal."""
        url = self.forward_url or payload["url"]
        method = str(payload.get("method") or "POST").upper()
        body = payload.get("body")
        raw = body_bytes(body) if body is not None else b""
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **(payload.get("headers") or {})}
        if self.signing_secret:
            headers.update(signature_headers(self.signing_secret, raw))
        synchronized = bool(payload.get("synchronized"))
        try:
            response = self.session.request(method, url, data=raw if body is not None else None, headers=headers,
                                            timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            logger.warning("run %s: %s %s failed: %s", run_id, method, url, exc)
            self.client.log(run_id, f"Execution agent {self.installation_id!r} could not reach the receiver: "
                                    f"{exc.__class__.__name__}")
            self.client.report(run_id, "FAILURE", "The execution agent could not reach the receiver")
            return
        status = response.status_code
        answer = _answer(response)
        logger.info("run %s: %s %s answered %s", run_id, method, url, status)
        self.client.record_response(run_id, answer)
        self.client.log(run_id, f"Execution agent {self.installation_id!r} forwarded the run; the receiver answered {status}.")
        if not 200 <= status < 300:
            self.client.report(run_id, "FAILURE", f"Webhook answered {status} (via execution agent)")
        elif synchronized:
            self.client.report(run_id, "SUCCESS", f"Webhook answered {status} (via execution agent)")

    def run_forever(self):
        backoff = 0.0
        while not self.stopping.is_set():
            try:
                forwarded = self.poll_once()
                backoff = 0.0
            except Exception as exc:  # the portal is down or refused us: back off and try again
                backoff = min(max(backoff * 2, self.poll_interval), MAX_BACKOFF_SECONDS)
                logger.error("poll failed (%s); retrying in %.0fs", exc, backoff)
                self.stopping.wait(backoff)
                continue
            if forwarded < self.limit:
                self.stopping.wait(self.poll_interval)


def _answer(response):
    """The receiver's answer: JSON if it parses, else text; at most MAX_RESPONSE_BYTES."""
    content = response.content[:MAX_RESPONSE_BYTES + 1]
    if len(content) <= MAX_RESPONSE_BYTES:
        try:
            return json.loads(content) if content else None
        except ValueError:
            pass
    return content[:MAX_RESPONSE_BYTES].decode(response.encoding or "utf-8", errors="replace")


def parse_args(argv=None):
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m portal.agent", description=__doc__.split("\n\n")[0])
    parser.add_argument("--portal-url", default=env("PORTAL_URL"), help="the portal's base URL (PORTAL_URL)")
    parser.add_argument("--client-id", default=env("PORTAL_CLIENT_ID"), help="an admin's machine credential (PORTAL_CLIENT_ID)")
    parser.add_argument("--client-secret", default=env("PORTAL_CLIENT_SECRET"), help="(PORTAL_CLIENT_SECRET)")
    parser.add_argument("--installation-id", default=env("AGENT_INSTALLATION_ID", "portal-agent"),
                        help="names this agent on the runs it claims (AGENT_INSTALLATION_ID)")
    parser.add_argument("--forward-url", default=env("AGENT_FORWARD_URL", ""),
                        help="send every run here instead of its payload URL (AGENT_FORWARD_URL)")
    parser.add_argument("--signing-secret", default=env("WEBHOOK_SIGNING_SECRET", ""),
                        help="key for x-port-signature, the portal's WEBHOOK_SIGNING_SECRET (unset: unsigned)")
    parser.add_argument("--poll-interval", type=float, default=float(env("AGENT_POLL_INTERVAL_SECONDS", "5")))
    parser.add_argument("--limit", type=int, default=int(env("AGENT_CLAIM_LIMIT", "10")), help="runs per claim")
    parser.add_argument("--visibility-timeout-ms", type=int, default=int(env("AGENT_VISIBILITY_TIMEOUT_MS", "0")) or None)
    parser.add_argument("--timeout", type=float, default=float(env("AGENT_TIMEOUT_SECONDS", "30")),
                        help="seconds for each HTTP call")
    parser.add_argument("--once", action="store_true", help="poll once and exit")
    args = parser.parse_args(argv)
    missing = [name for name, value in (("PORTAL_URL", args.portal_url), ("PORTAL_CLIENT_ID", args.client_id),
                                        ("PORTAL_CLIENT_SECRET", args.client_secret)) if not value]
    if missing:
        parser.error(f"missing {', '.join(missing)} (environment or arguments)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    client = PortalClient(args.portal_url, args.client_id, args.client_secret, timeout=args.timeout)
    agent = Agent(client, installation_id=args.installation_id, signing_secret=args.signing_secret,
                  forward_url=args.forward_url, limit=args.limit, visibility_timeout_ms=args.visibility_timeout_ms,
                  poll_interval=args.poll_interval, timeout=args.timeout)
    if not args.signing_secret:
        logger.warning("WEBHOOK_SIGNING_SECRET is not set: requests go out unsigned")
    if args.once:
        agent.poll_once()
        return 0
    signal.signal(signal.SIGINT, agent.stop)
    signal.signal(signal.SIGTERM, agent.stop)
    logger.info("agent %s polling %s every %ss", args.installation_id, args.portal_url, args.poll_interval)
    agent.run_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
