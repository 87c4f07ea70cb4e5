import pytest

from catalog.services.blueprints import blueprint_create
from catalog.services.entities import entity_write_one
from catalog.services.permissions import blueprint_permissions_update
from tests.factories import UserFactory
from tests.support.catalog_pages import DOMAIN, SERVICE, SYSTEM, blueprint, service


@pytest.fixture
def catalog(db):
    UserFactory(email="dev@example.com", teams=["platform"])
    UserFactory(email="pay@example.com", teams=["payments"])
    blueprint_create(actor=SYSTEM, data=DOMAIN)
    blueprint_create(actor=SYSTEM, data=SERVICE)
    blueprint_create(actor=SYSTEM, data={"identifier": "Secret", "title": "Secret things", "schema": {"properties": {}}})
    # Nobody but admins reads Secret.
    blueprint_permissions_update(actor=SYSTEM, blueprint=blueprint("Secret"), data={"entities": {"read": {"roles": []}}})
    entity_write_one(actor=SYSTEM, blueprint=blueprint("Domain"), data={"identifier": "payments", "title": "Payments",
                                                                       "properties": {"tier": "gold"}})
    entity_write_one(actor=SYSTEM, blueprint=blueprint("Secret"), data={"identifier": "vault"})
    service("checkout", teams=["payments"], title="Checkout", language="Go", replicas=3, public=True,
            repo="https://git.example.com/checkout", releasedAt="2025-03-01T10:30:00Z", notes="Takes the money",
            owner="pay@example.com")
    service("billing", teams=["payments"], title="Billing", language="Python", replicas=1, public=False)
    service("portal", teams=["platform"], title="Portal", language="Rust", replicas=2)
    return blueprint("Service")


@pytest.fixture
def dev(client, catalog):
    client.login(username="dev@example.com", password="pw")
    return client


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client
