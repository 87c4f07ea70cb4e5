"""Every API error leaves in Port's envelope: {"ok": false, "error": <code>, "message": <text>}.

Besides the errors we raise on purpose, `failure_answer` maps what escapes a view by accident, so that a
client never gets Django's HTML 500: a write that lost to concurrent writers (a deadlock or serialization
failure, retried by portal/retry.py until it gave up: `Busy`) → 503 `busy` with Retry-After: 1; a database
that is down → 503 `unavailable` with Retry-After; a value the database refused (DataError) or a number that
overflowed → 422 (the request is at fault, and input validation should have named the field); anything else
→ 500 `internal_error` naming the request id, with the traceback logged. The page handlers
(web/errorpages.py) use the same mapping."""
import logging

import psycopg
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.signals import got_request_exception
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response

from portal.errors import Busy, FieldError, PortalError, ValidationFailed
from portal.middleware import current_request_id
from portal.retry import BUSY_MESSAGE, is_conflict

logger = logging.getLogger(__name__)
# Seconds a client should wait before retrying while the database is unreachable.
UNAVAILABLE_RETRY_AFTER_SECONDS = 30
DATABASE_DOWN = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)

DRF_CODES = {
    drf.NotAuthenticated: (401, "unauthorized"),
    drf.AuthenticationFailed: (401, "unauthorized"),
    drf.PermissionDenied: (403, "forbidden"),
    drf.NotFound: (404, "not_found"),
    drf.MethodNotAllowed: (405, "method_not_allowed"),
    drf.UnsupportedMediaType: (415, "unsupported_media_type"),
    drf.ParseError: (400, "invalid_json"),
    drf.Throttled: (429, "too_many_requests"),
}


def validation_detail_errors(detail, path=""):
    """DRF's ValidationError.detail (nested dicts and lists of messages) → [FieldError], each path spelt as our
    own errors spell them (`items[0].name`); a list of plain messages at one place becomes one error."""
    if isinstance(detail, dict):
        return [error for key, value in detail.items()
                for error in validation_detail_errors(value, f"{path}.{key}" if path else str(key))]
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [FieldError(path, " ".join(str(item) for item in detail))]
        return [error for i, item in enumerate(detail) if item for error in validation_detail_errors(item, f"{path}[{i}]")]
    return [FieldError(path, str(detail))]


def error_response(status, code, message, headers=None):
    return Response({"ok": False, "error": code, "message": message}, status=status, headers=headers)


def exception_handler(exc, context):
    if isinstance(exc, PortalError):
        body = {"ok": False, "error": exc.code, "message": exc.message, **exc.details}
        return Response(body, status=exc.status, headers=_retry_after(exc))
    if isinstance(exc, Http404):
        return error_response(404, "not_found", str(exc) or "Not found.")
    if isinstance(exc, DjangoPermissionDenied):
        return error_response(403, "forbidden", str(exc) or "You do not have permission to do this.")
    if isinstance(exc, drf.ValidationError):
        return exception_handler(ValidationFailed(errors=validation_detail_errors(exc.detail)), context)
    for cls, (status, code) in DRF_CODES.items():
        if isinstance(exc, cls):
            headers = {}
            if isinstance(exc, drf.Throttled) and exc.wait:
                headers["Retry-After"] = str(int(exc.wait))
            return error_response(status, code, str(exc.detail), headers)
    if isinstance(exc, drf.APIException):
        return error_response(exc.status_code, exc.default_code, str(exc.detail))
    status, code, message, headers = failure_answer(exc)
    request = context["request"]
    if status == 500:
        logger.error("Internal error in %s %s", request.method, request.path, exc_info=exc)
        got_request_exception.send(sender=None, request=request._request)  # as Django does for its own 500s
    else:  # a DataError or overflow is input validation missing somewhere: the traceback says where
        logger.warning("%s %s answered %s: %r", request.method, request.path, status, exc,
                       exc_info=exc if status != 503 else None)  # an outage would log one per request
    return error_response(status, code, message, headers)


def _retry_after(exc):
    seconds = getattr(exc, "retry_after_seconds", None)
    return {"Retry-After": str(seconds)} if seconds else None


def failure_answer(exc):
    """(status, code, message, headers) for an exception nobody raised on purpose."""
    if isinstance(exc, Busy) or is_conflict(exc):  # a conflict outside retry_on_conflict is as busy as one retried
        return 503, Busy.code, BUSY_MESSAGE, {"Retry-After": str(Busy.retry_after_seconds)}
    if isinstance(exc, DATABASE_DOWN):
        return (503, "unavailable", "The portal cannot reach its database right now; try again shortly.",
                {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)})
    if isinstance(exc, (BadRequest, SuspiciousOperation)):
        # Our BadRequest messages name the parameter at fault; SuspiciousOperation's may reveal settings.
        message = str(exc) if isinstance(exc, BadRequest) and str(exc) else "This request is malformed."
        return 400, "bad_request", message, {}
    if isinstance(exc, (DataError, psycopg.DataError)):
        reason = (str(exc).strip().splitlines() or ["a value is out of range"])[0]
        return 422, "invalid_request", f"The database refused a value of this request: {reason}", {}
    if isinstance(exc, OverflowError):
        return 422, "invalid_request", "A number or duration in this request is out of range.", {}
    return 500, "internal_error", f"Internal error; the request id is {current_request_id() or '-'}.", {}
