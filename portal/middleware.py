"""Request correlation id, NUL refusal, body-size bound, and rate limiting with Port's x-ratelimit-* headers."""
import json
import logging
import time
import uuid
from contextvars import ContextVar

import redis
from django.conf import settings
from django.core.exceptions import BadRequest
from django.http import HttpResponse

from portal.strictjson import NUL

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
logger = logging.getLogger(__name__)


def current_request_id() -> str:
    return request_id_var.get()


class RequestIdLogFilter(logging.Filter):
    def filter(self, record):
        record.request_id = request_id_var.get() or "-"
        return True


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-Id", "")
        request_id = incoming[:64] if incoming and incoming.isprintable() else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-Id"] = request_id
        return response


def envelope_response(status, code, message, headers=None):
    body = json.dumps({"ok": False, "error": code, "message": message})
    response = HttpResponse(body, status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


class NulRefusalMiddleware:
    """PostgreSQL can neither store nor compare text holding a NUL character, so a NUL in a URL segment, a
    query parameter or a page's form field is refused here, naming it, before a view hands it to a query:
    422 in the envelope under /v1, a 400 page elsewhere. (JSON bodies: portal/api/parsers.py.) A cookie
    holding a NUL is dropped, as if it had not been sent, so a session lookup never sees it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        for name in [name for name, value in request.COOKIES.items() if NUL in name or NUL in value]:
            del request.COOKIES[name]
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        api = request.path.startswith("/v1/")
        fields = [*((name, [value]) for name, value in view_kwargs.items()), *request.GET.lists()]
        if not api and request.method == "POST":
            fields += request.POST.lists()
        for name, values in fields:
            if NUL in name or any(NUL in str(value) for value in values):
                message = f"{name.replace(NUL, '?')}: must not contain NUL characters"
                if api:
                    return envelope_response(422, "invalid_request", message)
                raise BadRequest(message)
        return None


class ApiGuardMiddleware:
    """For /v1: refuse bodies over the limit (413) and count requests per caller per window."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/v1/"):
            return self.get_response(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.API_MAX_BODY_BYTES:
            return envelope_response(
                413, "payload_too_large", f"Request body is {length} bytes; the limit is {settings.API_MAX_BODY_BYTES} bytes."
            )
        limit, period = settings.API_RATE_LIMIT, settings.API_RATE_PERIOD_SECONDS
        used, reset = self._count(request, period)
        headers = {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(limit - used, 0)),
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-period": str(period),
        }
        if used > limit:
            headers["Retry-After"] = str(reset)
            return envelope_response(429, "too_many_requests", f"Rate limit of {limit} requests per {period}s exceeded.", headers)
        response = self.get_response(request)
        for name, value in headers.items():
            response[name] = value
        return response

    @staticmethod
    def _caller_key(request):
        auth = request.headers.get("Authorization", "")
        if auth:
            return "t:" + uuid.uuid5(uuid.NAMESPACE_OID, auth).hex
        session = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if session:
            return "s:" + uuid.uuid5(uuid.NAMESPACE_OID, session).hex
        return "ip:" + request.META.get("REMOTE_ADDR", "")

    _redis = None

    @classmethod
    def _client(cls):
        if cls._redis is None:
            cls._redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        return cls._redis

    def _count(self, request, period):
        """Fixed window per caller: INCR and EXPIRE in one round trip, so a key expiring between the
        two can never fail the request."""
        now = int(time.time())
        window = now - now % period
        key = f"portal:ratelimit:{self._caller_key(request)}:{window}"
        try:
            pipe = self._client().pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, period + 1)
            used, _ = pipe.execute()
        except redis.RedisError:  # the limiter must never take the API down with the cache
            logger.warning("rate limiter unavailable", exc_info=True)
            used = 0
        return used, window + period - now
