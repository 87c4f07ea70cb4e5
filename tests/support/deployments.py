"""Deployment landscapes on the starter deployment blueprints (tests/catalog/deployment_contract.py): the contract
with two services and two environments (`install_contract`), entities added one by one (`add_*`), locks, and
a CI deployment report."""
from catalog.models import Blueprint
from catalog.services.blueprints import blueprint_create
from catalog.services.entities import UPSERT_MERGE, entity_write_one
from catalog.services.permissions import blueprint_permissions_update
from tests.catalog.deployment_contract import deployment_blueprints_install


def install_contract(system):
    """The starter blueprints' contract, devEnvironment too, with two services and two environments."""
    deployment_blueprints_install(system, mirrors=True)
    blueprint_create(actor=system, data={"identifier": "devEnvironment", "title": "Developer environment", "schema": {"properties": {
        "owner": {"type": "string", "format": "user"}, "branch": {"type": "string"}, "url": {"type": "string", "format": "url"},
        "ttl": {"type": "string", "format": "timer"}}}})
    bp = {b.identifier: b for b in Blueprint.objects.all()}
    for name in ("CartService", "PaymentService"):
        entity_write_one(actor=system, blueprint=bp["Component"], data={"identifier": name, "title": name})
    for name, kind in (("production", "production"), ("staging", "staging")):
        entity_write_one(actor=system, blueprint=bp["environment"], data={"identifier": name, "properties": {"type": kind}})
    return bp


def report(**overrides):
    body = {"service": "CartService", "environment": "production", "version": "1.2.3", "commitSha": "abc123",
            "jobUrl": "https://ci.example.com/jobs/1"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def lock(system, bp, blueprint, identifier, reason="freeze", by="sre@example.com"):
    return entity_write_one(actor=system, blueprint=bp[blueprint], mode=UPSERT_MERGE, data={
        "identifier": identifier, "properties": {"locked": True, "lockReason": reason, "lockedBy": by,
                                                 "lockedAt": "2025-01-01T00:00:00.000Z"}})


def add_service(system, bp, identifier, *, team=None, title=None):
    data = {"identifier": identifier, "title": title or identifier}
    if team:
        data["team"] = [team]
    return entity_write_one(actor=system, blueprint=bp["Component"], data=data).entity


def add_environment(system, bp, identifier, kind):
    return entity_write_one(actor=system, blueprint=bp["environment"],
                            data={"identifier": identifier, "properties": {"type": kind}}).entity


def add_running_service(system, bp, service, environment, **properties):
    return entity_write_one(actor=system, blueprint=bp["runningService"], data={
        "identifier": f"{service}-{environment}", "relations": {"service": service, "environment": environment},
        "properties": properties}).entity


def add_deployment(system, bp, running_service, identifier, *, finished, status="success", commit=None, version="1.0.0"):
    """A deployment entity with explicit timestamps (the CI endpoint stamps `now`)."""
    properties = {"version": version, "commitSha": f"sha-{identifier}", "jobUrl": f"https://ci.example.com/{identifier}",
                  "status": status, "deployedBy": "ci@example.com", "startedAt": finished, "finishedAt": finished}
    if commit is not None:
        properties["commitTime"] = commit
    return entity_write_one(actor=system, blueprint=bp["deployment"], data={
        "identifier": identifier, "relations": {"runningService": running_service}, "properties": properties}).entity


def restrict_read(system, bp, blueprint, **grant):
    """Members no longer read `blueprint`; `grant` says who does instead."""
    blueprint_permissions_update(actor=system, blueprint=bp[blueprint], data={"entities": {"read": {"roles": [], **grant}}})
