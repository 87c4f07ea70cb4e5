"""Deployment landscapes on the starter deployment blueprints (tests/support/deployment_contract.py): the contract
with two services and two environments (`install_contract`), entities added one by one (`add_*`), locks, and
a CI deployment report."""
from catalog.models import Blueprint
from catalog.services.permissions import blueprint_permissions_update
from tests.factories import BlueprintFactory, DeploymentFactory, EntityFactory, LockFactory, RunningServiceFactory
from tests.support.deployment_contract import deployment_blueprints_install


def install_contract(system):
    """The starter blueprints' contract, devEnvironment too, with two services and two environments."""
    deployment_blueprints_install(system, mirrors=True)
    BlueprintFactory(actor=system, identifier="devEnvironment", title="Developer environment", schema={"properties": {
        "owner": {"type": "string", "format": "user"}, "branch": {"type": "string"}, "url": {"type": "string", "format": "url"},
        "ttl": {"type": "string", "format": "timer"}}})
    bp = {b.identifier: b for b in Blueprint.objects.all()}
    for name in ("CartService", "PaymentService"):
        EntityFactory(actor=system, blueprint=bp["Component"], identifier=name, title=name)
    for name, kind in (("production", "production"), ("staging", "staging")):
        EntityFactory(actor=system, blueprint=bp["environment"], identifier=name, properties={"type": kind})
    return bp


def report(**overrides):
    body = {"service": "CartService", "environment": "production", "version": "1.2.3", "commitSha": "abc123",
            "jobUrl": "https://ci.example.com/jobs/1"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def lock(system, bp, blueprint, identifier, reason="freeze", by="sre@example.com"):
    return LockFactory(actor=system, blueprint=bp[blueprint], identifier=identifier, reason=reason, by=by)


def add_service(system, bp, identifier, *, team=None, title=None):
    data = {"identifier": identifier, "title": title or identifier}
    if team:
        data["team"] = [team]
    return EntityFactory(actor=system, blueprint=bp["Component"], **data)


def add_environment(system, bp, identifier, kind):
    return EntityFactory(actor=system, blueprint=bp["environment"], identifier=identifier, properties={"type": kind})


def add_running_service(system, bp, service, environment, **properties):
    return RunningServiceFactory(actor=system, blueprint=bp["runningService"], service=service, environment=environment,
                                 properties=properties)


def add_deployment(system, bp, running_service, identifier, *, finished, status="success", commit=None, version="1.0.0"):
    """A deployment entity with explicit timestamps (the CI endpoint stamps `now`)."""
    properties = {"version": version, "commitSha": f"sha-{identifier}", "jobUrl": f"https://ci.example.com/{identifier}",
                  "status": status, "deployedBy": "ci@example.com", "startedAt": finished, "finishedAt": finished}
    if commit is not None:
        properties["commitTime"] = commit
    return DeploymentFactory(actor=system, blueprint=bp["deployment"], identifier=identifier,
                             running_service=running_service, properties=properties)


def restrict_read(system, bp, blueprint, **grant):
    """Members no longer read `blueprint`; `grant` says who does instead."""
    blueprint_permissions_update(actor=system, blueprint=bp[blueprint], data={"entities": {"read": {"roles": [], **grant}}})
