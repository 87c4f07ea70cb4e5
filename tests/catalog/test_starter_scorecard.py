"""The starter's Production readiness scorecard on services: the properties and aggregations it reads are added to
the founding example's Component, the demo history gives it something to show, and a second load changes nothing."""
from io import StringIO

import pytest
from django.core.management import call_command

from catalog.models import Blueprint, Entity
from catalog.services.teams import team_create
from portal.actor import Actor

pytestmark = pytest.mark.django_db


def level(identifier):
    return Entity.objects.get(identifier=identifier).scorecard_results.get(scorecard="productionReadiness")


def test_the_demo_shows_services_at_different_levels():
    out = StringIO()
    call_command("load_starter", stdout=out)
    assert ("Starter catalog: added 4 properties on Component, the Production readiness scorecard on Component, "
            "the initiative 'Every service at Silver'.") in out.getvalue()
    component = Blueprint.objects.get(identifier="Component")
    assert {"readme", "onCall"} <= set(component.schema["properties"])
    assert set(component.aggregation_properties) == {"deploymentsLast30Days", "failedDeploymentsLast7Days"}
    team_create(actor=Actor.system(), data={"name": "Checkout"})
    call_command("load_demo_history", stdout=StringIO())

    cart = Entity.objects.get(identifier="CartService")
    assert cart.aggregates["deploymentsLast30Days"] > 0  # kept up as the history was written
    products = Entity.objects.get(identifier="ProductsService")
    # each service counts its own deployments only (the path filter), not those of services related to it through
    # their APIs (all paths: 153 of 104 deployments); the oldest may fall outside the last month
    assert cart.aggregates["deploymentsLast30Days"] + products.aggregates["deploymentsLast30Days"] <= \
        Entity.objects.filter(blueprint__identifier="deployment").count()
    assert products.aggregates["deploymentsLast30Days"] > 0
    assert level("ProductsService").level == "Bronze"  # team and README, no on-call
    assert level("ProductsService").passed == {"hasOwner": True, "hasReadme": True, "hasOnCall": False,
                                               "deployedRecently": True,
                                               "noRecentFailures": products.aggregates["failedDeploymentsLast7Days"] == 0}
    assert level("CartService").level == ("Gold" if cart.aggregates["failedDeploymentsLast7Days"] == 0 else "Silver")
    libraries = Entity.objects.filter(blueprint=component, properties__type="library")
    assert libraries.exists() and not any(e.scorecard_results.exists() for e in libraries)  # the filter: services only

    again = StringIO()
    call_command("load_starter", stdout=again)
    assert "added 4 properties" not in again.getvalue() and len(Blueprint.objects.get(identifier="Component").scorecards) == 1
