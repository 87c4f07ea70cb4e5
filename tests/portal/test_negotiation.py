"""/v1's content negotiation answers what DRF's would for every Accept header, its shortcut included."""
import pytest
from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from portal.api.negotiation import BlankAcceptNegotiation


def chosen(negotiation, accept, path="/v1/blueprints"):
    request = Request(APIRequestFactory().get(path, HTTP_ACCEPT=accept) if accept is not None
                      else APIRequestFactory().get(path))
    try:
        renderer, media_type = negotiation.select_renderer(request, [JSONRenderer()])
    except NotAcceptable:
        return "406"
    except Http404:  # a ?format= no renderer has
        return "404"
    return type(renderer).__name__, media_type


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/json; indent=4", "application/*",
                                    "text/html", "text/html, application/json;q=0.9", "  application/json  "])
def test_the_same_choice_as_drf(accept):
    assert chosen(BlankAcceptNegotiation(), accept) == chosen(DefaultContentNegotiation(), accept)


def test_a_blank_accept_gets_json_and_a_format_override_is_honoured():
    assert chosen(BlankAcceptNegotiation(), "") == ("JSONRenderer", "application/json")
    for path in ("/v1/blueprints?format=xml", "/v1/blueprints?format=json"):
        assert chosen(BlankAcceptNegotiation(), "application/json", path) == chosen(DefaultContentNegotiation(),
                                                                                     "application/json", path)
    assert chosen(BlankAcceptNegotiation(), "application/json", "/v1/blueprints?format=xml") == "404"
