"""Request correlation id, NUL refusal, body-size bound, and rate limiting with Port's x-ratelimit-* headers."""
import hashlib
import json
import logging
import threading
import time
import uuid
from contextvars import ContextVar

import redis
from django.conf import settings
from django.core.exceptions import BadRequest
from django.http import HttpResponse

from portal.errors import PortalError
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


class RateCount:
    """A caller's requests in the current rate window, asked of Redis as the request arrives and read when first
    needed: INCR and EXPIRE (one round trip, so a key expiring between the two can never fail the request) go out on
    this thread's own connection (`_held`), and an API view reads their answer after it has checked the caller's token
    (`rate_limit_enforce`), so the Redis round trip overlaps the database's instead of coming before it. Redis down
    or slow (1 s socket timeout): the count is 0, as the limiter must never take the API down with the cache. A kept
    connection that fails to send is replaced at once; one the server closed since (a restart) is found when its
    answer is read, so that request counts 0 and the next one connects anew."""

    def __init__(self, client, key, period):
        self._connection, self._used = None, None
        self.enforced = False  # the view refused the request, or let it run, on this count
        commands = [("INCR", key), ("EXPIRE", key, period + 1)]
        while True:
            connection, kept = None, False
            try:
                connection, kept = _held_connection(client)
                connection.send_packed_command(connection.pack_commands(commands), check_health=False)
            except redis.RedisError:
                _held_drop()
                if kept:  # closed since it was last used: once more, on a new one
                    continue
                self._unavailable()  # a new one failed: Redis is down (one connect timeout at most)
                return
            except BaseException:
                _held_drop()
                raise
            self._connection = connection
            return

    def _unavailable(self):
        logger.warning("rate limiter unavailable", exc_info=True)
        self._used = 0

    def used(self):
        """The count, the answer read on the first call."""
        if self._used is None:
            connection, self._connection = self._connection, None
            try:
                used = connection.read_response()
                connection.read_response()
                self._used = used
            except BaseException as error:
                _held_drop()  # the second answer may still be on its way: never read by another request
                if not isinstance(error, redis.RedisError):
                    raise
                self._unavailable()
        return self._used


_held = threading.local()  # `pair`: (the Redis client, this thread's connection to it), kept between requests


def _held_connection(client):
    """(this thread's connection to `client`'s Redis for rate counts, whether an earlier request made it): no pool to
    take it from and give back to on every request, nor a check for unread data (a count reads both answers it asked
    for, or drops the connection)."""
    pair = getattr(_held, "pair", None)
    if pair is not None and pair[0] is client:
        return pair[1], True
    _held_drop()
    # Made as the pool makes its own, but not counted against its max_connections: the pool never gets it back (a
    # thread that ends takes it along, and it closes its socket as it is collected).
    pool = client.connection_pool
    connection = pool.connection_class(**pool.connection_kwargs)
    _held.pair = (client, connection)
    return connection, False


def _held_drop():
    pair, _held.pair = getattr(_held, "pair", None), None
    if pair is not None:
        pair[1].disconnect()


def _over_limit(limit, period):
    return f"Rate limit of {limit} requests per {period}s exceeded."


class RateLimited(PortalError):
    status, code = 429, "too_many_requests"

    def __init__(self, limit, period, reset):
        super().__init__(_over_limit(limit, period))
        self.retry_after_seconds = reset


def rate_limit_enforce(request):
    """Refuse `request` (a Django request under /v1) with RateLimited when its caller is over the limit; API views call
    it once they have checked the token, before they do anything else. Nothing for a request the limiter did not
    count."""
    count = getattr(request, "portal_rate_count", None)
    if count is None or count.enforced:
        return
    count.enforced = True
    if count.used() > settings.API_RATE_LIMIT:
        period = settings.API_RATE_PERIOD_SECONDS
        raise RateLimited(settings.API_RATE_LIMIT, period, _window_reset(period)[1])


def _window_reset(period):
    """(the start of the current fixed window, seconds until the next one)."""
    now = int(time.time())
    window = now - now % period
    return window, window + period - now


def _digest(secret):
    """A caller's key from its credential, which is not kept in Redis as it is (blake2b: a few µs, where uuid5 took 17
    of every API call)."""
    return hashlib.blake2b(secret.encode(), digest_size=16).hexdigest()


class ApiGuardMiddleware:
    """For /v1: refuse bodies over the limit (413) and count requests per caller per window (RateCount). The count
    is sent before the view runs; a view that enforces it itself (`enforces_rate_limit`: the API views, after the
    token check) reads it there, any other is refused here before it runs (process_view), and a request answered
    before any view ran is answered 429 in its stead. Every answer carries Port's x-ratelimit-* headers."""

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
        window, reset = _window_reset(period)
        count = request.portal_rate_count = self._count(request, window, period)
        try:
            response = self.get_response(request)
        finally:
            used = count.used()
        headers = {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(limit - used, 0)),
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-period": str(period),
        }
        if used > limit:
            headers["Retry-After"] = str(reset)
            if not count.enforced:
                response = self._refusal(limit, period)
        for name, value in headers.items():
            response[name] = value
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        if getattr(getattr(view_func, "cls", None), "enforces_rate_limit", False):
            return None
        try:
            rate_limit_enforce(request)
        except RateLimited as refusal:
            return envelope_response(refusal.status, refusal.code, refusal.message)
        return None

    @staticmethod
    def _refusal(limit, period):
        return envelope_response(429, "too_many_requests", _over_limit(limit, period))

    @staticmethod
    def _caller_key(request):
        auth = request.headers.get("Authorization", "")
        if auth:
            return "t:" + _digest(auth)
        session = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if session:
            return "s:" + _digest(session)
        return "ip:" + request.META.get("REMOTE_ADDR", "")

    _redis = None

    @classmethod
    def _client(cls):
        if cls._redis is None:
            cls._redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        return cls._redis

    def _count(self, request, window, period):
        """Fixed window per caller: the RateCount of this request."""
        return RateCount(self._client(), f"portal:ratelimit:{self._caller_key(request)}:{window}", period)
