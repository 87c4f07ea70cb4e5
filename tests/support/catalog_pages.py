"""The catalog the catalog page tests browse (blueprints Domain, Service and Secret; `service` adds a Service) and
readers of the table page (`headers`, `table_rows`, `_queries`)."""
import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Blueprint
from portal.actor import Actor
from tests.factories import EntityFactory

SYSTEM = Actor.system()


DOMAIN = {
    "identifier": "Domain", "title": "Domain", "description": "A business domain.",
    "schema": {"properties": {"tier": {"type": "string", "title": "Tier", "enum": ["gold", "silver"],
                                       "enumColors": {"gold": "orange", "silver": "lightGray"}}}},
}

SERVICE = {
    "identifier": "Service", "title": "Service", "description": "A deployable service.",
    "schema": {"properties": {
        "language": {"type": "string", "title": "Language", "enum": ["Go", "Python", "Rust"],
                     "enumColors": {"Go": "blue", "Python": "green", "Rust": "red"}},
        "replicas": {"type": "number", "title": "Replicas"},
        "public": {"type": "boolean", "title": "Public"},
        "repo": {"type": "string", "title": "Repository", "format": "url"},
        "releasedAt": {"type": "string", "title": "Released", "format": "date-time"},
        "notes": {"type": "string", "title": "Notes"},
        "owner": {"type": "string", "title": "Owner", "format": "user"},
    }},
    "relations": {"domain": {"title": "Domain", "target": "Domain", "many": False}},
    "mirrorProperties": {"domainTier": {"title": "Domain tier", "path": "domain.tier"}},
    "calculationProperties": {"label": {"title": "Label", "type": "string",
                                        "calculation": '.identifier + " on " + (.properties.language // "?")'}},
}


def blueprint(identifier):
    return Blueprint.objects.get(identifier=identifier)


def service(identifier, *, teams=(), title=None, **properties):
    data = {"identifier": identifier, "team": list(teams), "properties": properties, "relations": {"domain": "payments"}}
    if title is not None:
        data["title"] = title
    return EntityFactory(blueprint="Service", **data)


def table_rows(response):
    """Identifiers of the table rows, in order."""
    return re.findall(r'<div class="muted ident">([^<]+)</div>', response.content.decode())


def headers(response):
    return [h.strip() for h in re.findall(r'<th scope="col"[^>]*>\s*(?:<a [^>]*>)?([^<]+)', response.content.decode())]


def _queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)
