"""The portal's Slack Web API client (slack-sdk), shared by the SLACK backend and the notifications.

Configured from the environment only: `SLACK_BOT_TOKEN` (empty: Slack is off), `SLACK_API_URL` (Slack's by
default; tests point it at a loopback server), `SLACK_DEFAULT_CHANNEL`. The URL is operator-controlled,
never user-authored, so these requests do not go through portal.outbound's private-address refusal.

slack-sdk's retry handlers retry a 429 after its Retry-After and a failed connection, up to
SLACK_MAX_RETRIES times per request; what is still refused raises `SlackFailed` with Slack's error code.
"""
import logging
from urllib.error import URLError

from django.conf import settings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

logger = logging.getLogger(__name__)


class SlackNotConfigured(Exception):
    message = "Slack is not configured (SLACK_BOT_TOKEN)"

    def __init__(self):
        super().__init__(self.message)


class SlackFailed(Exception):
    """Slack answered with an error (`error` is its code, e.g. channel_not_found) or could not be reached."""

    def __init__(self, error, *, response=None, unreachable=False):
        self.error, self.response, self.unreachable = error, response, unreachable
        super().__init__(error)

    @property
    def label(self) -> str:
        return self.error if self.unreachable else f"Slack refused the message: {self.error}"


def slack_configured() -> bool:
    return bool(settings.SLACK_BOT_TOKEN)


def slack_client() -> WebClient:
    if not slack_configured():
        raise SlackNotConfigured()
    base_url = settings.SLACK_API_URL or "https://slack.com/api/"
    retries = settings.SLACK_MAX_RETRIES
    return WebClient(
        token=settings.SLACK_BOT_TOKEN,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        timeout=settings.SLACK_TIMEOUT_SECONDS,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=retries),
                        RateLimitErrorRetryHandler(max_retry_count=retries)],
    )


def _call(method, **kwargs) -> dict:
    """`method` is a WebClient method name (it knows how each Slack method wants its arguments sent)."""
    client = slack_client()
    try:
        return getattr(client, method)(**kwargs).data
    except SlackApiError as exc:
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        raise SlackFailed(data.get("error") or f"HTTP {exc.response.status_code}", response=data) from None
    except (SlackClientError, URLError, OSError, ValueError) as exc:
        raise SlackFailed(f"Slack could not be reached: {exc}", unreachable=True) from None


def slack_post(channel, text, blocks=None) -> dict:
    """`chat.postMessage`; returns Slack's answer (`ok`, `channel`, `ts`, ...). SlackNotConfigured / SlackFailed."""
    message = {"channel": channel, "text": text}
    if blocks is not None:
        message["blocks"] = blocks
    return _call("chat_postMessage", **message)


def slack_user_id(email) -> str | None:
    """The Slack user id of `email` (`users.lookupByEmail`); None when Slack knows no such user."""
    try:
        return _call("users_lookupByEmail", email=email)["user"]["id"]
    except SlackFailed as exc:
        if exc.error == "users_not_found":
            return None
        raise


def slack_escape(text) -> str:
    """Text from users (titles, inputs, labels) with Slack's control characters escaped."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
