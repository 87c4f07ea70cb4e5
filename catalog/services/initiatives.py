"""Initiative create/update/delete (catalog/initiatives.py says what one is), each audited.

The initiative's blueprint row is held FOR SHARE while it is checked and written (catalog/services/row_locks.py,
step 2), so a scorecard change (which holds it FOR UPDATE and refuses to drop what an initiative is over) cannot
slip in between."""
from django.db import IntegrityError, transaction

from audit import choices as audit_choices
from audit.services import audit_record
from catalog.initiatives import initiative_definition_clean
from catalog.models import Initiative
from catalog.selectors.initiatives import initiative_json
from catalog.services.row_locks import blueprints_lock
from portal.errors import Conflict, ValidationFailed
from portal.retry import retry_on_conflict


def _clean(data):
    return initiative_definition_clean(data, blueprint_of=lambda identifier: blueprints_lock([identifier]).get(identifier))


def _audit(actor, verb, action, initiative, *, before, after):
    audit_record(actor=actor, verb=verb, action=action, resource_type="initiative", identifier=initiative.identifier,
                 blueprint=initiative.blueprint.identifier, before=before, after=after)


@retry_on_conflict
@transaction.atomic
def initiative_create(*, actor, data):
    fields = _clean(data)
    if Initiative.objects.filter(identifier=fields["identifier"]).exists():
        raise Conflict(f"Initiative {fields['identifier']!r} already exists.", path="identifier")
    try:
        with transaction.atomic():
            initiative = Initiative.objects.create(**fields, created_by=actor.label, updated_by=actor.label)
    except IntegrityError:  # created meanwhile by another request
        raise Conflict(f"Initiative {fields['identifier']!r} already exists.", path="identifier") from None
    _audit(actor, audit_choices.INITIATIVE_CREATED, audit_choices.AuditAction.CREATE, initiative, before=None,
           after=initiative_json(initiative))
    return initiative


@retry_on_conflict
@transaction.atomic
def initiative_update(*, actor, initiative, data):
    """PUT: `data` replaces the initiative; its identifier stays."""
    initiative = Initiative.objects.select_for_update().select_related("blueprint").get(pk=initiative.pk)
    if isinstance(data, dict) and data.get("identifier", initiative.identifier) != initiative.identifier:
        raise ValidationFailed(f"must be {initiative.identifier!r}, the initiative's identifier in the path",
                               path="identifier")
    before = initiative_json(initiative)
    fields = _clean({**data, "identifier": initiative.identifier} if isinstance(data, dict) else data)
    for name, value in fields.items():
        setattr(initiative, name, value)
    initiative.updated_by = actor.label
    initiative.save()
    _audit(actor, audit_choices.INITIATIVE_UPDATED, audit_choices.AuditAction.UPDATE, initiative, before=before,
           after=initiative_json(initiative))
    return initiative


@retry_on_conflict
@transaction.atomic
def initiative_delete(*, actor, initiative):
    initiative = Initiative.objects.select_for_update().select_related("blueprint").get(pk=initiative.pk)
    before = initiative_json(initiative)
    initiative.delete()
    _audit(actor, audit_choices.INITIATIVE_DELETED, audit_choices.AuditAction.DELETE, initiative, before=before,
           after=None)
