from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from portal import strictjson
from portal.errors import PortalError, ValidationFailed


class BoundedJSONParser(JSONParser):
    """JSON bodies up to API_MAX_BODY_BYTES and API_MAX_JSON_DEPTH levels deep, holding nothing PostgreSQL
    cannot store: NaN/Infinity are not JSON (400); a NUL character or a number that overflows a float is
    refused naming its path (422)."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(settings.API_MAX_BODY_BYTES + 1) if stream else b""
        if len(raw) > settings.API_MAX_BODY_BYTES:
            raise PortalError("Request body exceeds 1 MiB.", code="payload_too_large", status=413)
        if not raw:
            return {}  # no body: a route that needs fields names the first one missing
        if not raw.strip():
            raise ParseError("Malformed JSON: the body is only whitespace.")
        try:
            data = strictjson.loads(raw)
        except RecursionError:
            raise ValidationFailed(f"JSON body is nested deeper than {settings.API_MAX_JSON_DEPTH} levels.")
        except ValueError as exc:
            raise ParseError(f"Malformed JSON: {exc}")
        problem = strictjson.problem(data, max_depth=settings.API_MAX_JSON_DEPTH)
        if problem:
            raise ValidationFailed(problem)
        return data
