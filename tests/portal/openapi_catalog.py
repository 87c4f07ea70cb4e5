"""The small catalog the OpenAPI tests run against: one object named "fuzz" of each kind a path parameter
names (blueprint, entity, team, action), a run "r_fuzz", and an admin's machine credential."""
from django.core import signals
from django.db import close_old_connections

from actions.models import Run
from actions.services.actions import action_create
from actions.services.runs import run_request
from catalog.models import Blueprint
from catalog.services.api_clients import api_client_create
from catalog.services.blueprints import blueprint_create
from catalog.services.scorecards import scorecard_create
from catalog.services.entities import entity_write_one
from catalog.services.teams import team_create
from portal.actor import Actor
from portal.services.api_clients import access_token_issue
from tests.factories import UserFactory

SEED = "fuzz"
RUN_ID = "r_fuzz"
ADMIN_EMAIL = "admin@example.com"
PATH_PARAMETERS = {"identifier": SEED, "blueprint": SEED, "name": SEED, "email": ADMIN_EMAIL, "run_id": RUN_ID,
                   "service": SEED, "environment": SEED}


def seed_catalog():
    """Creates the catalog; returns an admin machine credential's bearer token."""
    admin = UserFactory(email=ADMIN_EMAIL, admin=True)
    system = Actor.system()
    team_create(actor=system, data={"name": SEED})
    blueprint_create(actor=system, data={"identifier": SEED, "title": "Fuzz",
                                         "schema": {"properties": {"note": {"type": "string"}}, "required": []}})
    entity_write_one(actor=system, blueprint=Blueprint.objects.get(identifier=SEED), data={"identifier": SEED})
    scorecard_create(actor=system, blueprint=Blueprint.objects.get(identifier=SEED), data={
        "identifier": SEED, "rules": [{"identifier": "noted", "level": "Gold", "query": {
            "combinator": "and", "conditions": [{"property": "note", "operator": "isNotEmpty"}]}}]})
    action = action_create(actor=system, data={
        "identifier": SEED, "title": "Fuzz",
        "trigger": {"type": "self-service", "operation": "DAY-2", "blueprintIdentifier": SEED,
                    "userInputs": {"properties": {}, "required": []}},
        "invocationMethod": {"type": "WEBHOOK", "url": "http://127.0.0.1:9/hook"}})
    run = run_request(actor=Actor(user=admin, origin="API"), action=action, properties={}, entity_identifier=SEED)
    Run.objects.filter(pk=run.pk).update(id=RUN_ID)
    client, secret = api_client_create(actor=system, user=admin)
    token, _ = access_token_issue(client_id=client.client_id, client_secret=secret)
    return token


class RequestSignalsOff:
    """Requests sent through Django's WSGI handler would close the test's connection, and so its transaction,
    on the request signals; Django's test client switches them off the same way."""

    def __enter__(self):
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)

    def __exit__(self, *exc):
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
