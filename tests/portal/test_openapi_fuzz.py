"""A bounded schemathesis run over every operation of GET /v1/openapi.json, inside `make test`: a few examples
per operation (FUZZ_EXAMPLES, default 3) with a fixed seed (FUZZ_SEED), against the WSGI app, as an admin's
machine credential, over a small seeded catalog whose identifiers the path parameters name. Every check
schemathesis has must pass: the API and its document must agree. `make fuzz` runs the same with many more
examples.

An operation whose valid-looking bodies depend on more than an OpenAPI schema can say (a blueprint's own
JSON schema, Port's definition language) may answer 422 to data the document calls valid: those few are
listed in POSITIVE_422, each with its reason. Every other check stays on for them."""
import os

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from schemathesis.config import SchemathesisConfig

from actions.tasks import run_dispatch_task
from tests.portal.openapi_catalog import PATH_PARAMETERS, RequestSignalsOff, seed_catalog

POSITIVE_422 = {
    "POST /v1/blueprints": "a definition's validity depends on Port's property and relation language",
    "PUT /v1/blueprints/{identifier}": "as POST /v1/blueprints",
    "PATCH /v1/blueprints/{identifier}": "as POST /v1/blueprints",
    "POST /v1/blueprints/{blueprint}/entities": "an entity's properties are checked against its blueprint's schema",
    "PUT /v1/blueprints/{blueprint}/entities/{identifier}": "as POST .../entities",
    "PATCH /v1/blueprints/{blueprint}/entities/{identifier}": "as POST .../entities",
    "PUT /v1/blueprints/{blueprint}/entities/search": "as POST .../entities",
    "PATCH /v1/blueprints/{blueprint}/entities/search": "as POST .../entities",
    "POST /v1/blueprints/{blueprint}/entities/bulk": "as POST .../entities",
    "POST /v1/blueprints/{blueprint}/entities/search": "a rule set's validity depends on the blueprint's properties",
    "POST /v1/entities/search": "a rule set's validity depends on the blueprints' properties",
    "POST /v1/blueprints/{blueprint}/scorecards": "a rule's conditions depend on the blueprint's properties; levels "
                                                  "and rules refer to each other",
    "PUT /v1/blueprints/{blueprint}/scorecards": "as POST .../scorecards",
    "PUT /v1/blueprints/{blueprint}/scorecards/{identifier}": "as POST .../scorecards",
    "POST /v1/initiatives": "an initiative names a blueprint, and a scorecard, level and rules of it, that must exist",
    "PUT /v1/initiatives/{identifier}": "as POST /v1/initiatives",
    "POST /v1/actions": "a definition's validity depends on Port's action language and the blueprints",
    "PUT /v1/actions/{identifier}": "as POST /v1/actions",
    "PATCH /v1/actions/{identifier}/permissions": "grants name roles, users and teams that must exist",
    "PATCH /v1/blueprints/{identifier}/permissions": "grants name roles, users and teams that must exist",
    "POST /v1/actions/{identifier}/runs": "properties are checked against the action's user inputs",
    "PATCH /v1/users/{email}": "roles and teams must exist",
    "POST /v1/teams": "users must exist",
    "PUT /v1/teams/{name}": "users must exist",
    "PATCH /v1/teams/{name}": "users must exist",
    "POST /v1/deployments": "the service and environment must be entities of the deployment blueprints",
    "POST /v1/blueprints/{blueprint}/entities/{identifier}/ttl/extend": "only an entity with an expiry can be extended",
    "GET /v1/blueprints/{blueprint}/entities": "`from` must be a cursor this API returned",
    "GET /v1/audit-log": "`next` must be a cursor this API returned; from/to real instants, from before to",
    "GET /v1/deployments": "from/to must be real instants between 1970 and 2999, from before to",
    "GET /v1/dora": "as GET /v1/deployments, and the period at most two years",
    "POST /v1/blueprints/entities/datasource-entities": "`from` must be a cursor this API returned, `before` an instant",
    "POST /v1/integration": "an Ocean registration's fields are checked by integration_create; its body is not yet "
                            "described field by field",
    "POST /v1/backstage/locations": "a target must suit its type (an absolute path, an allowed URL, an organization's "
                                    "login) and the settings that allow it",
}


def _config():
    examples = int(os.environ.get("FUZZ_EXAMPLES", "3"))
    operations = [
        {"include-name": name, "checks": {"positive_data_acceptance": {
            "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]}}}
        for name in POSITIVE_422
    ]
    return SchemathesisConfig.from_dict({
        "seed": int(os.environ.get("FUZZ_SEED", "20261204")),
        "suppress-health-check": ["all"],
        # NUL characters are refused everywhere by design (PostgreSQL cannot hold them), with a 422 naming the
        # field: tests/portal/test_failure_envelopes.py covers that, so valid data here holds none.
        # Undeclared query parameters and headers are ignored by the API, as by most: sending them tests nothing,
        # and schemathesis then judges requests whose declared parameters serialized to nothing as invalid.
        # The test sends the admin's token itself; a generated (or negated) Authorization header would be replaced
        # by it and never reach the API, so none is generated.
        "generation": {"max-examples": examples, "deterministic": True, "database": "none", "allow-x00": False,
                       "allow-extra-parameters": False, "with-security-parameters": False},
        "parameters": {f"path.{name}": value for name, value in PATH_PARAMETERS.items()},
        "operations": operations,
    })


schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", get_wsgi_application(), config=_config())


@pytest.fixture
def admin_token(db, monkeypatch):
    monkeypatch.setattr(run_dispatch_task, "delay", lambda run_id: None)
    token = seed_catalog()
    with RequestSignalsOff():
        yield token


@pytest.mark.django_db
@schema.parametrize()
def test_api_agrees_with_its_document(case, admin_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_token}"})
