"""The small catalog the run tests share (blueprints Service and Env, users of four teams), and who may run what."""
from guardian.shortcuts import assign_perm

from catalog.models import Team
from portal.actor import Actor
from tests.factories import BlueprintFactory, EntityFactory, UserFactory


SERVICE = {
    "identifier": "Service",
    "title": "Service",
    "schema": {"properties": {"tier": {"type": "string"}, "language": {"type": "string"}}},
}

ENV = {"identifier": "Env", "title": "Environment", "schema": {"properties": {"branch": {"type": "string"}}}}


def catalog_setup():
    """Blueprints Service and Env; teams platform (dev@) and payments (pay@); services owned by each."""
    BlueprintFactory(**SERVICE)
    BlueprintFactory(**ENV)
    users = {
        "admin": UserFactory(email="admin@example.com", admin=True),
        "dev": UserFactory(email="dev@example.com", teams=["platform"]),
        "pay": UserFactory(email="pay@example.com", teams=["payments"]),
        "other": UserFactory(email="other@example.com"),
        "manager": UserFactory(email="manager@example.com", teams=["managers"]),
        "manager2": UserFactory(email="manager2@example.com", teams=["managers"]),
    }
    for identifier, teams, tier in (("portal", ["platform"], "1"), ("checkout", ["payments"], "2")):
        EntityFactory(blueprint="Service", identifier=identifier, team=teams, properties={"tier": tier})
    return users


def grant(verb, action, *, users=(), teams=()):
    codename = {"execute": "actions.execute_action", "approve": "actions.approve_action"}[verb]
    for user in users:
        assign_perm(codename, user, action)
    for name in teams:
        assign_perm(codename, Team.objects.get(name=name).group, action)


def actor_of(user):
    return Actor(user=user, origin="API")
