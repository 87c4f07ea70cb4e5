import pytest
from rest_framework.test import APIClient

from portal.actor import Actor
from tests.factories import UserFactory
from tests.support.api import api_for
from tests.support.mirrors import mirror_catalog


@pytest.fixture
def system():
    return Actor.system()


@pytest.fixture
def admin_user(db):
    return UserFactory(email="admin@example.com", admin=True)


@pytest.fixture
def member_user(db):
    return UserFactory(email="dev@example.com")


@pytest.fixture
def admin_api(admin_user):
    return api_for(admin_user)


@pytest.fixture
def member_api(member_user):
    return api_for(member_user)


@pytest.fixture
def anon_api():
    return APIClient()


@pytest.fixture
def eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # tasks run at once, in this process (a live server's too: before its redirect)


@pytest.fixture
def mirrored_catalog(db):
    """tests/support/mirrors.py's catalog, whose Service mirrors values not every reader may read."""
    mirror_catalog()


@pytest.fixture(autouse=True)
def changelog_routes_fresh():
    """Each test reads change log destinations from its own database (actions/changelog.py keeps them a few seconds)."""
    from actions.changelog import changelog_routes_forget

    changelog_routes_forget()
    yield
    changelog_routes_forget()
