"""EXTEND_TTL (ours): the built-in "Extend TTL" DAY-2 action moves its entity's expiry by the TTL policy's
step, never past the maximum (actions.services.ttl.ttl_extend decides and audits)."""
from actions.backends.outcome import run_end
from actions.choices import RunStatus
from portal.actor import Actor, AuditOrigin
from portal.errors import PortalError


def extend_ttl_run(run):
    from actions.services.ttl import ttl_extend

    if run.entity is None:
        run_end(run, RunStatus.FAILURE, "Extend TTL needs an entity.")
        return
    actor = Actor(user=run.requested_by, origin=AuditOrigin.API) if run.requested_by else Actor.system()
    try:
        result = ttl_extend(actor=actor, entity=run.entity)
    except PortalError as exc:
        run_end(run, RunStatus.FAILURE, exc.message)
        return
    run_end(run, RunStatus.SUCCESS, f"TTL extended to {result['expiresAt']}")
