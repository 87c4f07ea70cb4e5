"""Small shared pieces of every /v1 view."""
import json

from django.http import HttpResponse
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.actor import Actor, AuditOrigin
from portal.errors import Forbidden, ValidationFailed
from portal.middleware import rate_limit_enforce

TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def query_bool(request, name, default=False):
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValidationFailed(f"must be true or false, got {raw!r}", path=name)


def query_int(request, name, default, *, minimum=0, maximum):
    """An integer query parameter within [minimum, maximum]: every one is bounded, so none reaches a query
    out of the column's range."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(f"must be an integer, got {raw!r}", path=name)
    if not minimum <= value <= maximum:
        raise ValidationFailed(f"must be between {minimum} and {maximum}", path=name)
    return value


class JsonText(str):
    """A value already written as JSON (by SQL: catalog/selectors/search_pages.py): `ok` places it in the answer as
    it is instead of parsing and writing it again."""


def ok(status=200, **payload):
    if any(isinstance(value, JsonText) for value in payload.values()):
        members = ['"ok":true'] + [
            json.dumps(name) + ":" + (value if isinstance(value, JsonText) else
                                      json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False))
            for name, value in payload.items()]
        return HttpResponse("{" + ",".join(members) + "}", status=status, content_type="application/json")
    return Response({"ok": True, **payload}, status=status)


def require(condition, message):
    if not condition:
        raise Forbidden(message)


def token_check(request):
    """The pending check of the request's bearer token, when its view runs it in its own statement; else None."""
    return getattr(getattr(request, "_request", request), "token_check", None)


class ApiView(APIView):
    """Base for /v1 views: the actor of API requests is the caller, origin API. A query parameter given twice
    is refused (which one would count?) unless the view reads it as a list (`repeatable_query`)."""

    repeatable_query = ()
    enforces_rate_limit = True  # perform_authentication does; portal/middleware.py ApiGuardMiddleware
    # Methods whose bearer token's check may ride in the view's own statement (portal/api/authentication.py): views
    # that only read, and pass `token_check(request)` to the statement.
    token_check_rides = ()

    def perform_authentication(self, request):
        """The token is checked while the rate limiter's count is on its way back from Redis (RateCount); a caller
        over the limit is then refused, whatever its token, before the view does anything else."""
        try:
            super().perform_authentication(request)
        finally:
            rate_limit_enforce(request._request)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        for name, values in request.query_params.lists():
            if len(values) > 1 and name not in self.repeatable_query:
                raise ValidationFailed(f"may be given once, got {len(values)} values", path=name)
        if request.method in BODY_METHODS:
            request.data  # noqa: B018 -- parse now: a malformed body is refused, even where the route ignores it

    def finalize_response(self, request, response, *args, **kwargs):
        """A token check the view left pending (portal/api/authentication.py) is run before anything is answered: 401
        when the token no longer stands, 503 when the database cannot tell, in place of the view's answer."""
        check = token_check(request)
        if check is not None and not check.resolved:
            try:
                check.run()
            except Exception as refusal:  # noqa: BLE001 -- answered as any view's error is
                response = self.handle_exception(refusal)
        return super().finalize_response(request, response, *args, **kwargs)

    def actor(self):
        return Actor.from_request(self.request, AuditOrigin.API)

    def body(self):
        data = self.request.data
        if not isinstance(data, dict):
            raise ValidationFailed("must be a JSON object", path="body")
        return data
