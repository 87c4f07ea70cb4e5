"""Initiatives in the admin: the fields of an initiative's JSON, validated at the field by the initiative service,
saved and deleted through it (audited with origin ADMIN)."""
import pytest

from audit.models import AuditEvent
from catalog.models import Blueprint, Initiative
from catalog.services.scorecards import scorecard_create
from portal.actor import Actor
from tests.factories import BlueprintFactory
from tests.support.admin import form_errors, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored_blueprint(db):
    BlueprintFactory(identifier="service", title="Service", schema={"properties": {
        "readme": {"type": "string"}, "tier": {"type": "string"}}})
    blueprint = Blueprint.objects.get(identifier="service")
    scorecard_create(actor=Actor.system(), blueprint=blueprint, data={"identifier": "readiness", "rules": [
        {"identifier": "hasReadme", "level": "Silver",
         "query": {"combinator": "and", "conditions": [{"property": "readme", "operator": "isNotEmpty"}]}}]})
    return blueprint


def initiative_form(**overrides):
    data = {"identifier": "docs", "title": "Every service documented", "description": "", "blueprint": "service",
            "scorecard": "readiness", "level": "Silver", "rules": "", "filter": "", "due_date": "2027-03-31"}
    return {**data, **overrides}


def test_an_initiative_added_in_the_admin_is_saved_through_the_service(staff, scored_blueprint):
    response = staff.post(url(Initiative, "add"), initiative_form(
        filter='{"combinator": "and", "conditions": [{"property": "tier", "operator": "=", "value": "prod"}]}'))
    assert response.status_code == 302, form_errors(response)
    initiative = Initiative.objects.get()
    assert (initiative.level, str(initiative.due_date), initiative.filter["conditions"][0]["value"]) == (
        "Silver", "2027-03-31", "prod")
    event = AuditEvent.objects.get(verb="catalog.initiative.created")
    assert event.origin == "ADMIN"
    response = staff.post(url(Initiative, "change", initiative.pk), initiative_form(title="Documented", level="",
                                                                                   rules='["hasReadme"]'))
    assert response.status_code == 302, form_errors(response)
    assert Initiative.objects.get().rules == ["hasReadme"]
    assert staff.get(url(Initiative, "changelist")).status_code == 200
    assert staff.post(url(Initiative, "delete", initiative.pk), {"post": "yes"}).status_code == 302
    assert not Initiative.objects.exists()
    assert AuditEvent.objects.filter(verb="catalog.initiative.deleted", origin="ADMIN").count() == 1


@pytest.mark.parametrize("overrides, field, message", [
    ({"scorecard": "nope"}, "scorecard", "scorecard: blueprint 'service' has no scorecard 'nope'"),
    ({"level": "Platinum"}, "level", "level: must be one of the scorecard's levels"),
    ({"level": "", "rules": ""}, "level", "level: an initiative needs a level to reach or rules to pass"),
    ({"rules": '["nope"]'}, "rules", "rules[0]: 'nope' is not a rule of scorecard 'readiness'"),
    ({"filter": '{"combinator": "and", "conditions": [{"property": "nope", "operator": "=", "value": 1}]}'}, "filter",
     "filter.conditions[0].property"),
    ({"identifier": "a/b"}, "identifier", "identifier: 'a/b' is not a valid key"),
])
def test_a_bad_initiative_is_an_error_at_its_field(staff, scored_blueprint, overrides, field, message):
    errors = form_errors(staff.post(url(Initiative, "add"), initiative_form(**overrides)))
    assert list(errors) == [field], errors
    assert errors[field][0].startswith(message), errors
    assert not Initiative.objects.exists()
