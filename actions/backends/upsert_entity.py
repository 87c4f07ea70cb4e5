"""The UPSERT_ENTITY backend: render `mapping` over the run's context and write that entity (merge upsert),
tagged with the run's id so the catalog links it to the run (engineer C's entity hook sets the result).

The write is made by the system on the run's behalf, not with the requester's catalog permissions: the
action's execute grant (checked when the run was requested) is the permission, as with Port — that is what
lets a developer lock an environment through an action without write access to the blueprint. The audit
event of the write carries the run id, which names the requester.
"""
from actions.choices import RunStatus
from actions.credentials import write_only
from actions.templating import TemplateError, TemplateRenderer, run_template_context
from actions.backends.outcome import run_end
from portal.actor import Actor
from portal.errors import PortalError

ENTITY_FIELDS = ("identifier", "title", "team", "icon", "properties", "relations")




def upsert_entity_run(run) -> None:
    from actions.services.runs import run_record_response
    from catalog.models import Blueprint
    from catalog.services.entities import UPSERT_MERGE, entity_write_one

    invocation = run.action.invocation
    renderer = TemplateRenderer(run_template_context(run), write_only=write_only)
    try:
        blueprint_identifier = renderer.render(invocation.get("blueprintIdentifier"), "blueprintIdentifier").value
        mapping = renderer.render(invocation.get("mapping") or {}, "mapping")
    except TemplateError as exc:
        run_end(run, RunStatus.FAILURE, f"Template error in {exc}")
        return
    if not isinstance(mapping.value, dict):
        run_end(run, RunStatus.FAILURE, "Template error in mapping: must render to an object")
        return
    data = {key: mapping.value[key] for key in ENTITY_FIELDS if key in mapping.value}
    stored = {key: mapping.stored[key] for key in ENTITY_FIELDS if key in mapping.value}
    run_record_response(run=run, response=None, revealed=tuple(renderer.revealed),
                        payload={"type": "UPSERT_ENTITY", "blueprintIdentifier": blueprint_identifier, "mapping": stored})
    blueprint = Blueprint.objects.filter(identifier=blueprint_identifier).first() if isinstance(blueprint_identifier, str) else None
    if blueprint is None:
        run_end(run, RunStatus.FAILURE, f"Entity not written: blueprint {blueprint_identifier!r} does not exist")
        return
    try:
        write = entity_write_one(actor=Actor.system(), blueprint=blueprint, data=data, mode=UPSERT_MERGE, run_id=run.id)
    except PortalError as exc:
        run_end(run, RunStatus.FAILURE, f"Entity not written: {exc.message}")
        return
    run_end(run, RunStatus.SUCCESS, f"Entity {write.identifier!r} of blueprint {blueprint.identifier!r} "
                                    f"{'created' if write.created else 'updated'}")
