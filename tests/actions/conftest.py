import pytest

from catalog.models import Blueprint
from tests.support import action_definitions, runs


@pytest.fixture
def blueprints(db):
    """Blueprints Service and Environment, which the action definitions of tests/support/action_definitions.py use."""
    action_definitions.catalog_setup()
    return {bp.identifier: bp for bp in Blueprint.objects.all()}


@pytest.fixture
def users(db):
    """The run tests' catalog (tests/support/runs.py): users by role, services of two teams."""
    return runs.catalog_setup()
