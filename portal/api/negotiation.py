"""Content negotiation for /v1: an empty Accept header is read as no Accept header (any type), so it gets JSON
on every route, as a missing one does; an Accept that names no JSON type is 406 `not_acceptable`. What CI and
Port's clients send (`application/json`, `*/*`, nothing) picks the first renderer, JSON, without parsing it."""
from rest_framework.negotiation import DefaultContentNegotiation

PLAIN_ACCEPTS = {"", "*/*", "application/json"}


class BlankAcceptNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        first = renderers[0] if renderers else None
        if (format_suffix is None and first is not None and first.media_type == "application/json"
                and request.META.get("HTTP_ACCEPT", "").strip() in PLAIN_ACCEPTS
                and self.settings.URL_FORMAT_OVERRIDE not in request.query_params):
            return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)

    def get_accept_list(self, request):
        if not request.META.get("HTTP_ACCEPT", "").strip():
            return ["*/*"]
        return super().get_accept_list(request)
