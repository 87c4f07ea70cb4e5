"""The daily scorecard snapshot beat keeps: level counts overall and per owning team, one row per day, rewritten
within the day, earlier days untouched."""
from datetime import date

import pytest
from django.conf import settings

from catalog.models import Blueprint, ScorecardSnapshot
from catalog.services.blueprints import blueprint_create
from catalog.services.entities import UPSERT, entity_write_one
from catalog.services.scorecards import scorecard_create
from catalog.tasks import scorecard_snapshots_task
from portal.actor import Actor
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()


def write(identifier, teams=(), **properties):
    entity_write_one(actor=SYSTEM, blueprint=Blueprint.objects.get(identifier="service"), mode=UPSERT,
                     data={"identifier": identifier, "team": list(teams), "properties": properties})


@pytest.fixture
def scored_services(db):
    TeamFactory(name="payments")
    TeamFactory(name="platform")
    blueprint_create(actor=SYSTEM, data={"identifier": "service", "title": "Service",
                                         "schema": {"properties": {"readme": {"type": "string"}}}})
    blueprint = Blueprint.objects.get(identifier="service")
    scorecard_create(actor=SYSTEM, blueprint=blueprint, data={"identifier": "docs", "rules": [
        {"identifier": "readme", "level": "Silver",
         "query": {"combinator": "and", "conditions": [{"property": "readme", "operator": "isNotEmpty"}]}}]})
    write("checkout", ["payments"], readme="https://docs/checkout")
    write("billing", ["payments"])
    write("portal", ["platform", "payments"], readme="https://docs/portal")
    write("orphan")
    return blueprint


def snapshot(day, team=""):
    return ScorecardSnapshot.objects.get(day=day, scorecard="docs", team=team).counts


def test_counts_per_level_overall_and_per_team(scored_services):
    assert scorecard_snapshots_take_on(date(2026, 12, 1)) == 3
    assert snapshot(date(2026, 12, 1)) == {"Gold": 2, "Bronze": 2}  # no Bronze or Gold rules
    assert snapshot(date(2026, 12, 1), "payments") == {"Gold": 2, "Bronze": 1}
    assert snapshot(date(2026, 12, 1), "platform") == {"Gold": 1}


def test_the_day_is_rewritten_and_earlier_days_kept(scored_services):
    scorecard_snapshots_take_on(date(2026, 12, 1))
    write("billing", ["payments"], readme="https://docs/billing")
    scorecard_snapshots_take_on(date(2026, 12, 2))
    scorecard_snapshots_take_on(date(2026, 12, 2))
    assert snapshot(date(2026, 12, 1), "payments") == {"Gold": 2, "Bronze": 1}
    assert snapshot(date(2026, 12, 2), "payments") == {"Gold": 3}
    assert ScorecardSnapshot.objects.filter(team="payments").count() == 2


def test_beat_takes_it_hourly(scored_services):
    entry = settings.CELERY_BEAT_SCHEDULE["catalog-scorecard-snapshots"]
    assert entry == {"task": "catalog.tasks.scorecard_snapshots_task", "schedule": 3600.0}
    assert scorecard_snapshots_task.name == entry["task"]
    assert scorecard_snapshots_task() == 3
    assert ScorecardSnapshot.objects.filter(team="").get().counts == {"Gold": 2, "Bronze": 2}


def scorecard_snapshots_take_on(day):
    from catalog.services.scorecards import scorecard_snapshots_take

    return scorecard_snapshots_take(day=day)
