"""Content negotiation for /v1: an empty Accept header is read as no Accept header (any type), so it gets JSON
on every route, as a missing one does; an Accept that names no JSON type is 406 `not_acceptable`."""
from rest_framework.negotiation import DefaultContentNegotiation


class BlankAcceptNegotiation(DefaultContentNegotiation):
    def get_accept_list(self, request):
        if not request.META.get("HTTP_ACCEPT", "").strip():
            return ["*/*"]
        return super().get_accept_list(request)
