import pytest

from tests.factories import BlueprintFactory, EntityFactory, UserFactory
from tests.support.catalog_pages import DOMAIN, SERVICE, blueprint, service


@pytest.fixture
def catalog(db):
    UserFactory(email="dev@example.com", teams=["platform"])
    UserFactory(email="pay@example.com", teams=["payments"])
    BlueprintFactory(**DOMAIN)
    BlueprintFactory(**SERVICE)
    # Nobody but admins reads Secret.
    BlueprintFactory(identifier="Secret", title="Secret things", permissions={"entities": {"read": {"roles": []}}})
    EntityFactory(blueprint="Domain", identifier="payments", title="Payments", properties={"tier": "gold"})
    EntityFactory(blueprint="Secret", identifier="vault")
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
