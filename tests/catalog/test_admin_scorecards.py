"""Scorecards in the blueprint admin (the platform team's configuration UI): a JSON field validated at the field by
the scorecard service, saved through it (evaluated, audited), emptied to remove them."""
import pytest

from audit.models import AuditEvent
from catalog.models import Blueprint, Entity
from tests.factories import EntityFactory
from tests.support.admin import blueprint_form, form_errors, url

pytestmark = pytest.mark.django_db
READINESS = {"identifier": "readiness", "title": "Readiness", "rules": [
    {"identifier": "typed", "title": "Has a language", "level": "Silver",
     "query": {"combinator": "and", "conditions": [{"property": "language", "operator": "isNotEmpty"}]}}]}


@pytest.fixture
def admin_service(staff):
    assert staff.post(url(Blueprint, "add"), blueprint_form()).status_code == 302
    service = Blueprint.objects.get(identifier="Service")
    EntityFactory(blueprint=service, identifier="checkout", properties={"language": "Go"})
    return service


def test_scorecards_saved_from_the_admin_are_evaluated_and_audited(staff, admin_service):
    response = staff.post(url(Blueprint, "change", admin_service.pk), blueprint_form(scorecards=[READINESS]))
    assert response.status_code == 302
    assert [s["identifier"] for s in Blueprint.objects.get(pk=admin_service.pk).scorecards] == ["readiness"]
    assert Entity.objects.get(identifier="checkout").scorecard_results.get().level == "Gold"
    event = AuditEvent.objects.get(verb="catalog.scorecard.created")
    assert event.origin == "ADMIN" and event.identifier == "readiness"

    response = staff.post(url(Blueprint, "change", admin_service.pk), blueprint_form(scorecards=None))
    assert response.status_code == 302
    assert Blueprint.objects.get(pk=admin_service.pk).scorecards == []
    assert AuditEvent.objects.filter(verb="catalog.scorecard.deleted").count() == 1


def test_a_bad_scorecard_is_an_error_at_the_scorecards_field(staff, admin_service):
    bad = {**READINESS, "rules": [{**READINESS["rules"][0], "level": "Platinum"}]}
    errors = form_errors(staff.post(url(Blueprint, "change", admin_service.pk), blueprint_form(scorecards=[bad])))
    assert list(errors) == ["scorecards"]
    assert errors["scorecards"][0].startswith("scorecards[0].rules[0].level: must be one of the scorecard's levels")
    assert Blueprint.objects.get(pk=admin_service.pk).scorecards == []
