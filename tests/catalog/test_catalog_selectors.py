"""The catalog's selectors behind the web pages: each returns what the user may read and nothing they may not.

The world: Domain (every member reads it), Service (read only by the team owning an entity), Secret (admins only);
dev@ is in platform, which owns the service `portal`; pay@ is in payments, which owns `checkout`; other@ is in no
team. `portal` relates to the domain `payments` and to the secret `vault`."""
import pytest
from django.contrib.auth.models import AnonymousUser

from catalog.models import Blueprint, Team
from catalog.selectors.api_clients import api_client_is_active
from catalog.selectors.audit_events import audit_events_about_visible_to
from catalog.selectors.blueprints import (blueprint_visible_to, blueprints_by_identifier, blueprints_exist,
                                          blueprints_visible_to, entity_counts_visible_to)
from catalog.selectors.conditions import conditions_met
from catalog.selectors.entities import entities_owned_by_visible_to, entity_team_ids
from catalog.selectors.entity_choices import entity_choices_visible_to, entity_titles_visible_to
from catalog.selectors.locks import environments_visible_to, locked_entities_visible_to, team_ids_by_identifier
from catalog.selectors.relations import relations_from_visible_to, relations_to_visible_to
from catalog.selectors.saved_views import saved_view_visible_to, saved_views_visible_to
from catalog.selectors.teams import team_names
from catalog.selectors.users import active_user_names
from catalog.services.api_clients import api_client_create, api_client_deactivate
from catalog.services.blueprints import blueprint_create
from catalog.services.entities import UPSERT_MERGE, entity_write_one
from catalog.services.permissions import blueprint_permissions_update
from catalog.services.saved_views import saved_view_save
from portal.actor import Actor, AuditOrigin
from tests.factories import UserFactory
from tests.support.locks import deploy_catalog, lock

SYSTEM = Actor.system()
OWNED_ONLY = {"entities": {"read": {"roles": [], "ownedByTeam": True}}}


def blueprint(identifier):
    return Blueprint.objects.get(identifier=identifier)


def write(blueprint_identifier, identifier, **data):
    return entity_write_one(actor=SYSTEM, blueprint=blueprint(blueprint_identifier),
                            data={"identifier": identifier, **data}).entity


@pytest.fixture
def selector_world(db):
    blueprint_create(actor=SYSTEM, data={"identifier": "Domain", "title": "Domain", "schema": {"properties": {}}})
    blueprint_create(actor=SYSTEM, data={"identifier": "Secret", "title": "Secret", "schema": {"properties": {}}})
    blueprint_create(actor=SYSTEM, data={
        "identifier": "Service", "title": "Service", "schema": {"properties": {"tier": {"type": "string"}}},
        "relations": {"domain": {"title": "Domain", "target": "Domain", "many": False},
                      "vault": {"title": "Vault", "target": "Secret", "many": False}}})
    blueprint_permissions_update(actor=SYSTEM, blueprint=blueprint("Secret"), data={"entities": {"read": {"roles": []}}})
    blueprint_permissions_update(actor=SYSTEM, blueprint=blueprint("Service"), data=OWNED_ONLY)
    users = {"dev": UserFactory(email="dev@example.com", teams=["platform"]),
             "pay": UserFactory(email="pay@example.com", teams=["payments"]),
             "other": UserFactory(email="other@example.com"),
             "admin": UserFactory(email="admin@example.com", admin=True)}
    write("Domain", "payments", title="Payments")
    write("Secret", "vault", title="Vault")
    users["portal"] = write("Service", "portal", title="Portal", team=["platform"], properties={"tier": "1"},
                            relations={"domain": "payments", "vault": "vault"})
    users["checkout"] = write("Service", "checkout", title="Checkout", team=["payments"], properties={"tier": "2"},
                              relations={"domain": "payments"})
    return users


def test_blueprints_visible_to_lists_those_with_entities_the_user_may_read(selector_world):
    assert [b.identifier for b in blueprints_visible_to(selector_world["dev"])] == ["Domain", "Service"]
    assert [b.identifier for b in blueprints_visible_to(selector_world["admin"])] == ["Domain", "Secret", "Service"]
    assert blueprint_visible_to(selector_world["dev"], "Service").identifier == "Service"
    assert blueprint_visible_to(selector_world["dev"], "Secret") is None
    assert blueprint_visible_to(selector_world["admin"], "Secret").identifier == "Secret"
    assert blueprint_visible_to(selector_world["admin"], "Nope") is None


def test_entity_counts_visible_to_count_only_the_entities_the_user_may_read(selector_world):
    ids = {identifier: blueprint(identifier).pk for identifier in ("Domain", "Service", "Secret")}
    assert entity_counts_visible_to(selector_world["dev"]) == {ids["Domain"]: 1, ids["Service"]: 1}
    assert entity_counts_visible_to(selector_world["other"]) == {ids["Domain"]: 1}  # owns no service
    assert entity_counts_visible_to(selector_world["admin"]) == {ids["Domain"]: 1, ids["Service"]: 2, ids["Secret"]: 1}


def test_blueprints_by_identifier_and_blueprints_exist(db):
    assert blueprints_exist() is False and blueprints_by_identifier() == {}
    blueprint_create(actor=SYSTEM, data={"identifier": "Domain", "title": "Domain", "schema": {"properties": {}}})
    assert blueprints_exist() is True and list(blueprints_by_identifier()) == ["Domain"]


def test_entities_owned_by_visible_to_are_those_of_the_users_teams(selector_world):
    assert [e.identifier for e in entities_owned_by_visible_to(selector_world["dev"], limit=10)] == ["portal"]
    assert [e.identifier for e in entities_owned_by_visible_to(selector_world["pay"], limit=10)] == ["checkout"]
    assert entities_owned_by_visible_to(selector_world["other"], limit=10) == []
    assert entity_team_ids(selector_world["portal"]) == {Team.objects.get(name="platform").pk}


def test_relations_from_visible_to_hide_targets_the_user_may_not_read(selector_world):
    assert [(r.relation, r.target.identifier) for r in relations_from_visible_to(selector_world["dev"], selector_world["portal"])] == [
        ("domain", "payments")]  # not the vault: Secret is for admins
    assert [(r.relation, r.target.identifier) for r in relations_from_visible_to(selector_world["admin"], selector_world["portal"])] == [
        ("domain", "payments"), ("vault", "vault")]


def test_relations_to_visible_to_hide_sources_the_user_may_not_read(selector_world):
    domain = blueprint("Domain").entities.get(identifier="payments")
    assert [r.source.identifier for r in relations_to_visible_to(selector_world["dev"], domain, per_group=10)] == ["portal"]
    assert [r.source.identifier for r in relations_to_visible_to(selector_world["pay"], domain, per_group=10)] == ["checkout"]
    assert relations_to_visible_to(selector_world["other"], domain, per_group=10) == []
    (first,) = relations_to_visible_to(selector_world["admin"], domain, per_group=1)
    assert (first.source.identifier, first.group_size) == ("checkout", 2)


def test_conditions_met_reads_the_entity_as_the_user(selector_world):
    conditions = {
        "tier one": {"combinator": "and", "rules": [{"property": "tier", "operator": "=", "value": "1"}]},
        "tier two": {"combinator": "and", "rules": [{"property": "tier", "operator": "=", "value": "2"}]},
        "broken": {"combinator": "and", "rules": [{"property": "gone", "operator": "=", "value": "x"}]},
    }
    assert conditions_met(selector_world["dev"], selector_world["portal"], conditions) == {"tier one"}
    assert conditions_met(selector_world["pay"], selector_world["portal"], conditions) == set()  # pay may not read portal
    assert conditions_met(selector_world["dev"], selector_world["portal"], {}) == set()


def test_entity_choices_visible_to_offer_only_readable_entities(selector_world):
    assert entity_choices_visible_to(selector_world["dev"], "Service", None, limit=10) == ([("portal", "Portal")], False)
    assert entity_choices_visible_to(selector_world["pay"], "Service", None, limit=10) == ([("checkout", "Checkout")], False)
    assert entity_choices_visible_to(selector_world["other"], "Service", None, limit=10) == ([], False)
    assert entity_choices_visible_to(selector_world["admin"], "Service", None, limit=1) == ([("checkout", "Checkout")], True)
    descending = {"property": "$identifier", "order": "DESC"}
    assert entity_choices_visible_to(selector_world["admin"], "Service", None, limit=1, sort=descending) == (
        [("portal", "Portal")], True)
    tier_two = {"combinator": "and", "rules": [{"property": "tier", "operator": "=", "value": "2"}]}
    assert entity_choices_visible_to(selector_world["admin"], "Service", tier_two, limit=10) == ([("checkout", "Checkout")], False)
    assert entity_choices_visible_to(selector_world["dev"], "Service", tier_two, limit=10) == ([], False)
    assert entity_choices_visible_to(selector_world["admin"], "Service", None, limit=10, text="CHECK") == (
        [("checkout", "Checkout")], False)
    assert entity_choices_visible_to(selector_world["admin"], "Nope", None, limit=10) == ([], False)
    assert entity_titles_visible_to(selector_world["dev"], "Service", ["portal", "checkout"]) == {"portal": "Portal"}
    assert entity_titles_visible_to(selector_world["admin"], "Service", ["portal", "checkout"]) == {
        "portal": "Portal", "checkout": "Checkout"}


def test_audit_events_about_visible_to_follow_the_entity_read_rule(selector_world):
    def about(user):
        return [e.identifier for e in audit_events_about_visible_to(user, resource_type="entity", blueprint="Service",
                                                                   identifier="portal", limit=10)]
    assert about(selector_world["dev"]) == ["portal"]  # its creation
    assert about(selector_world["pay"]) == []
    assert about(selector_world["admin"]) == ["portal"]
    assert about(AnonymousUser()) == []


def test_saved_view_visible_to_is_the_users_own_or_a_shared_one(selector_world):
    service = blueprint("Service")
    actor = Actor(user=selector_world["dev"], origin=AuditOrigin.UI)
    private = saved_view_save(actor=actor, blueprint=service, name="mine", query="", columns=[])
    shared = saved_view_save(actor=actor, blueprint=service, name="ours", query="", columns=[], shared=True)
    assert saved_view_visible_to(selector_world["dev"], service, private.pk) == private
    assert saved_view_visible_to(selector_world["pay"], service, private.pk) is None
    assert saved_view_visible_to(selector_world["pay"], service, shared.pk) == shared
    assert [v.name for v in saved_views_visible_to(selector_world["pay"], service)] == ["ours"]


def test_lock_reads_show_only_readable_environments_and_running_services(db):
    deploy_catalog()
    blueprint_permissions_update(actor=SYSTEM, blueprint=blueprint("environment"), data=OWNED_ONLY)
    platform = UserFactory(email="dev@example.com", teams=["platform"])
    payments = UserFactory(email="pay@example.com", teams=["payments"])
    admin = UserFactory(email="admin@example.com", admin=True)
    entity_write_one(actor=SYSTEM, blueprint=blueprint("environment"), mode=UPSERT_MERGE,
                     data={"identifier": "production", "team": ["platform"]})
    lock("environment", "production")
    lock("environment", "staging")
    assert [e.identifier for e in environments_visible_to(admin)] == ["production", "staging", "development"]
    assert [e.identifier for e in environments_visible_to(platform)] == ["production"]
    assert environments_visible_to(payments) == []
    assert [e.identifier for e in locked_entities_visible_to(admin, limit=10)] == ["production", "staging"]
    assert [e.identifier for e in locked_entities_visible_to(admin, limit=1)] == ["production"]
    assert [e.identifier for e in locked_entities_visible_to(platform, limit=10)] == ["production"]
    assert locked_entities_visible_to(payments, limit=10) == []
    assert team_ids_by_identifier("environment", ["production", "staging"]) == {
        "production": {Team.objects.get(name="platform").pk}}


def test_team_names_and_active_user_names(db):
    UserFactory(email="b@example.com", first_name="Bea", last_name="Bo", teams=["zeta", "alpha"])
    UserFactory(email="a@example.com", is_active=False)
    UserFactory(email="", username="no-email")
    assert team_names() == ["alpha", "zeta"] and team_names(limit=1) == ["alpha"]
    assert active_user_names(limit=10) == [("b@example.com", "Bea Bo")]  # not the inactive one, not the one without email


def test_api_client_is_active_until_deactivated(selector_world):
    client, _secret = api_client_create(actor=SYSTEM, user=selector_world["admin"])
    assert api_client_is_active(client.client_id) is True
    api_client_deactivate(actor=SYSTEM, client=client)
    assert api_client_is_active(client.client_id) is False
    assert api_client_is_active("nobody") is False
