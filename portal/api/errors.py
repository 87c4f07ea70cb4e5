"""Every API error leaves in Port's envelope: {"ok": false, "error": <code>, "message": <text>}."""
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response

from portal.errors import PortalError

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


def flatten_validation_detail(detail, path=""):
    """DRF's nested error dict → 'path.to.field: message' lines."""
    if isinstance(detail, dict):
        parts = [flatten_validation_detail(value, f"{path}.{key}" if path else str(key)) for key, value in detail.items()]
        return "; ".join(p for p in parts if p)
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            text = " ".join(str(item) for item in detail)
            return f"{path}: {text}" if path else text
        return "; ".join(flatten_validation_detail(item, f"{path}[{i}]") for i, item in enumerate(detail) if item)
    return f"{path}: {detail}" if path else str(detail)


def error_response(status, code, message, headers=None):
    return Response({"ok": False, "error": code, "message": message}, status=status, headers=headers)


def exception_handler(exc, context):
    if isinstance(exc, PortalError):
        body = {"ok": False, "error": exc.code, "message": exc.message, **exc.details}
        return Response(body, status=exc.status)
    if isinstance(exc, Http404):
        return error_response(404, "not_found", str(exc) or "Not found.")
    if isinstance(exc, DjangoPermissionDenied):
        return error_response(403, "forbidden", str(exc) or "You do not have permission to do this.")
    if isinstance(exc, drf.ValidationError):
        return error_response(422, "invalid_request", flatten_validation_detail(exc.detail))
    for cls, (status, code) in DRF_CODES.items():
        if isinstance(exc, cls):
            headers = {}
            if isinstance(exc, drf.Throttled) and exc.wait:
                headers["Retry-After"] = str(int(exc.wait))
            return error_response(status, code, str(exc.detail), headers)
    if isinstance(exc, drf.APIException):
        return error_response(exc.status_code, exc.default_code, str(exc.detail))
    return None
