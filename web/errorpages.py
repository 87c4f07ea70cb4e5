"""Django's error handlers (handler400/403/404/500 in web/urls.py): what fails outside a DRF view (a
middleware, an unknown route, a page) answers our JSON envelope under /v1 and a friendly page elsewhere,
never Django's bare HTML. The 500/503 page renders without the request's context (no session, user or
database), so it shows even while the database is down; if even that fails, a static page does."""
import sys

from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.html import escape

from portal.api.errors import failure_answer
from portal.api.views import api_route_missing
from portal.errors import Busy
from portal.middleware import current_request_id, envelope_response

API_PREFIX = "/v1/"
HEADINGS = {400: "Bad request", 403: "Not allowed", 404: "Page not found", 422: "Bad request",
            500: "Something went wrong", 503: "The portal is unavailable"}
BUSY_HEADING = "The portal is busy"
PAGE_MESSAGES = {
    403: "You do not have permission to see this page.",
    404: "There is nothing at this address. The link may be out of date, or the item was deleted or renamed.",
    500: "The portal could not answer this request. The error has been logged.",
    503: "The portal cannot reach its database right now. Try again in a minute.",
}


def _is_api(request):
    return request.path.startswith(API_PREFIX)


def bad_request(request, exception):
    _status, _code, message, _headers = failure_answer(exception)
    if _is_api(request):
        return envelope_response(400, "bad_request", message)
    return render(request, "error.html", {"heading": HEADINGS[400], "message": message}, status=400)


def permission_denied(request, exception):
    if _is_api(request):
        return envelope_response(403, "forbidden", str(exception) or "You do not have permission to do this.")
    return render(request, "error.html", {"heading": HEADINGS[403], "message": PAGE_MESSAGES[403]}, status=403)


def page_not_found(request, exception):
    if _is_api(request):
        return api_route_missing(request)
    return render(request, "error.html", {"heading": HEADINGS[404], "message": PAGE_MESSAGES[404]}, status=404)


def server_error(request):
    """Called by Django inside its exception handling, so sys.exc_info() is the failure being answered."""
    status, code, message, headers = failure_answer(sys.exc_info()[1])
    if _is_api(request):
        return envelope_response(status, code, message, headers)
    busy = code == Busy.code  # the message says to try again, not that the database is down
    page = {"heading": BUSY_HEADING if busy else HEADINGS[status], "message": message if busy else PAGE_MESSAGES.get(status, message),
            "request_id": current_request_id() if status == 500 else ""}
    try:
        body = render_to_string("error.html", page)
    except Exception:  # the page of last resort cannot fail in turn
        body = (f"<!doctype html><title>{escape(page['heading'])}</title><h1>{escape(page['heading'])}</h1>"
                f"<p>{escape(page['message'])}</p>")
    response = HttpResponse(body, status=400 if status == 422 else status)
    for name, value in headers.items():
        response[name] = value
    return response
