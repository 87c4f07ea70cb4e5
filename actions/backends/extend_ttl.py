"""EXTEND_TTL (ours): the built-in "Extend TTL" DAY-2 action moves its entity's expiry by the TTL policy's
step, never past the maximum (actions.services.ttl.ttl_extend decides and audits)."""
from actions.choices import RunStatus
from audit.choices import AuditOrigin
from portal.actor import Actor
from portal.errors import PortalError


def extend_ttl_run(run):
    from actions.services.runs import run_finish
    from actions.services.ttl import ttl_extend

    if run.entity is None:
        run_finish(actor=Actor.system(), run=run, status=RunStatus.FAILURE, label="Extend TTL needs an entity.")
        return
    actor = Actor(user=run.requested_by, origin=AuditOrigin.API) if run.requested_by else Actor.system()
    try:
        result = ttl_extend(actor=actor, entity=run.entity)
    except PortalError as exc:
        run_finish(actor=Actor.system(), run=run, status=RunStatus.FAILURE, label=exc.message)
        return
    run_finish(actor=Actor.system(), run=run, status=RunStatus.SUCCESS, label=f"TTL extended to {result['expiresAt']}")
