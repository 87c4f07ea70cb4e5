from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from portal import strictjson
from portal.errors import PortalError, ValidationFailed


def json_depth_exceeds(value, bound):
    """Iterative depth check, so a hostile document cannot exhaust the stack here."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > bound:
            return True
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return False


class BoundedJSONParser(JSONParser):
    """JSON bodies up to API_MAX_BODY_BYTES and API_MAX_JSON_DEPTH levels deep, strictly JSON (no NaN or
    Infinity, finite numbers) and without NUL characters, which PostgreSQL cannot store."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(settings.API_MAX_BODY_BYTES + 1) if stream else b""
        if len(raw) > settings.API_MAX_BODY_BYTES:
            raise PortalError("Request body exceeds 1 MiB.", code="payload_too_large", status=413)
        if not raw.strip():
            return {}
        try:
            data = strictjson.loads(raw)
        except RecursionError:
            raise ValidationFailed(f"JSON body is nested deeper than {settings.API_MAX_JSON_DEPTH} levels.")
        except ValueError as exc:
            raise ParseError(f"Malformed JSON: {exc}")
        if json_depth_exceeds(data, settings.API_MAX_JSON_DEPTH):
            raise ValidationFailed(f"JSON body is nested deeper than {settings.API_MAX_JSON_DEPTH} levels.")
        # A string can hold a NUL only if the text has the escape (or is UTF-16/32, full of NUL bytes).
        if strictjson.NUL_ESCAPE.encode() in raw or b"\x00" in raw:
            problem = strictjson.nul_problem(data)
            if problem:
                raise ValidationFailed(problem)
        return data
