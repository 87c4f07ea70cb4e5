"""Saved views of a blueprint table: save (a new name, or the same name again to replace it) and delete."""
from django.db import transaction

from audit import choices as audit_choices
from audit.services import audit_record
from catalog.access import is_admin
from catalog.models import SavedView
from portal.errors import Forbidden, ValidationFailed

NAME_MAX, QUERY_MAX, COLUMNS_MAX = 100, 2000, 100


def saved_view_json(view):
    return {"name": view.name, "blueprint": view.blueprint.identifier, "query": view.query,
            "columns": list(view.columns), "shared": view.shared, "owner": view.owner.email}


def _clean(name, query, columns):
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        raise ValidationFailed(f"is required, at most {NAME_MAX} characters", path="name")
    query = (query or "").lstrip("?")
    if len(query) > QUERY_MAX:
        raise ValidationFailed(f"at most {QUERY_MAX} characters; remove some filters", path="query")
    if not isinstance(columns, list) or len(columns) > COLUMNS_MAX or not all(isinstance(c, str) for c in columns):
        raise ValidationFailed(f"must be a list of at most {COLUMNS_MAX} column keys", path="columns")
    return name, query, list(dict.fromkeys(columns))


@transaction.atomic
def saved_view_save(*, actor, blueprint, name, query, columns, shared=False):
    """The actor's view `name` of `blueprint`, created or replaced."""
    name, query, columns = _clean(name, query, columns)
    view = SavedView.objects.select_for_update().filter(owner=actor.user, blueprint=blueprint, name=name).first()
    before = saved_view_json(view) if view else None
    if view is None:
        view = SavedView(owner=actor.user, blueprint=blueprint, name=name)
    view.query, view.columns, view.shared = query, columns, bool(shared)
    view.save()
    audit_record(actor=actor, verb=audit_choices.SAVED_VIEW_SAVED,
                 action=audit_choices.AuditAction.UPDATE if before else audit_choices.AuditAction.CREATE,
                 resource_type="saved_view", identifier=name, blueprint=blueprint.identifier,
                 before=before, after=saved_view_json(view))
    return view


@transaction.atomic
def saved_view_delete(*, actor, view):
    """Only its owner (or an admin) deletes a view, shared or not."""
    if view.owner_id != actor.user.pk and not is_admin(actor.user):
        raise Forbidden(f"The view {view.name!r} is {view.owner.email}'s; only they may delete it.")
    before = saved_view_json(view)
    view.delete()
    audit_record(actor=actor, verb=audit_choices.SAVED_VIEW_DELETED, action=audit_choices.AuditAction.DELETE,
                 resource_type="saved_view", identifier=before["name"], blueprint=before["blueprint"], before=before)
