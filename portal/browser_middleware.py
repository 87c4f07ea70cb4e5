"""Django's middleware that serves browsers — sessions, the signed-in user, flash messages — passed around by a /v1
call that carries a bearer token, which none of them serves: DRF checks the token itself, and such a call has no
session to load or save and no page to flash a message on. A /v1 call without a bearer token (a page's script,
signed in by its session) goes through them all, as any page does. Each is a subclass of Django's, so what checks
for it (the admin's system checks) finds it. Not among them: CommonMiddleware (it checks the Host header against
ALLOWED_HOSTS and sets Content-Length, for every caller) and CsrfViewMiddleware (`check --deploy` looks for it by
name; the API views are exempt from it anyway, at the cost of one attribute read).
"""
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware


def bearer_api_call(request):
    """A /v1 request with `Authorization: Bearer …` (a token DRF checks, or refuses with 401)."""
    found = getattr(request, "_portal_bearer_api", None)
    if found is None:
        found = request._portal_bearer_api = (
            request.path.startswith("/v1/") and request.META.get("HTTP_AUTHORIZATION", "")[:7].lower() == "bearer ")
    return found


class _BrowserOnly:
    def __call__(self, request):
        if bearer_api_call(request):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(_BrowserOnly, DjangoSessionMiddleware):
    pass


class AuthenticationMiddleware(_BrowserOnly, DjangoAuthenticationMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, DjangoMessageMiddleware):
    pass
