"""The small catalog the OpenAPI tests run against: one object named "fuzz" of each kind a path parameter
names (blueprint, entity, team, action, initiative), a run "r_fuzz", and an admin's machine credential."""
from django.core import signals
from django.db import close_old_connections
from django.test import override_settings

from actions.models import Run
from actions.services.actions import action_create
from actions.services.runs import run_request
from catalog.models import Blueprint
from catalog.services.backstage import backstage_location_register
from catalog.services.initiatives import initiative_create
from catalog.services.scorecards import scorecard_create
from portal.actor import Actor
from tests.factories import ApiClientFactory, BlueprintFactory, EntityFactory, TeamFactory, UserFactory
from tests.support.api import token_of

SEED = "fuzz"
RUN_ID = "r_fuzz"
ADMIN_EMAIL = "admin@example.com"
PATH_PARAMETERS = {"identifier": SEED, "blueprint": SEED, "name": SEED, "email": ADMIN_EMAIL, "run_id": RUN_ID,
                   "service": SEED, "environment": SEED}


def seed_catalog():
    """Creates the catalog; returns an admin machine credential's bearer token."""
    admin = UserFactory(email=ADMIN_EMAIL, admin=True)
    system = Actor.system()
    TeamFactory(name=SEED)
    BlueprintFactory(identifier=SEED, title="Fuzz",
                     schema={"properties": {"note": {"type": "string"}}, "required": []})
    EntityFactory(blueprint=Blueprint.objects.get(identifier=SEED), identifier=SEED)
    scorecard_create(actor=system, blueprint=Blueprint.objects.get(identifier=SEED), data={
        "identifier": SEED, "rules": [{"identifier": "noted", "level": "Gold", "query": {
            "combinator": "and", "conditions": [{"property": "note", "operator": "isNotEmpty"}]}}]})
    initiative_create(actor=system, data={"identifier": SEED, "title": "Fuzz", "blueprint": SEED, "scorecard": SEED,
                                          "level": "Gold", "dueDate": "2027-03-31"})
    # A file location of a file that does not exist: a refresh reads nothing and reports why.
    with override_settings(BACKSTAGE_FILE_ROOTS=["/nonexistent"]):
        backstage_location_register(actor=system, data={"identifier": SEED, "type": "file",
                                                        "target": "/nonexistent/fuzz.yaml"})
    action = action_create(actor=system, data={
        "identifier": SEED, "title": "Fuzz",
        "trigger": {"type": "self-service", "operation": "DAY-2", "blueprintIdentifier": SEED,
                    "userInputs": {"properties": {}, "required": []}},
        "invocationMethod": {"type": "WEBHOOK", "url": "http://127.0.0.1:9/hook"}})
    run = run_request(actor=Actor(user=admin, origin="API"), action=action, properties={}, entity_identifier=SEED)
    Run.objects.filter(pk=run.pk).update(id=RUN_ID)
    return token_of(ApiClientFactory(user=admin))


class RequestSignalsOff:
    """Requests sent through Django's WSGI handler would close the test's connection, and so its transaction,
    on the request signals; Django's test client switches them off the same way."""

    def __enter__(self):
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)

    def __exit__(self, *exc):
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
