"""Saved views on a blueprint table (`/catalog/<blueprint>/`): the table's filters, search, sort and columns under
a name, the user's own or shared with everyone who can read the blueprint. Saving and deleting are POSTs to the
table's own URL, so a refused name comes back at its field on the same table."""
from urllib.parse import urlencode

from django.contrib import messages
from django.shortcuts import redirect

from catalog.selectors.saved_views import saved_view_visible_to, saved_views_visible_to
from catalog.services.saved_views import saved_view_delete, saved_view_save
from portal.actor import Actor, AuditOrigin
from portal.errors import NotFound, PortalError

NOT_SAVED = ("after", "before", "columns")


def view_query(params):
    """What a view keeps of the table's query string: everything but paging and the column choice."""
    kept = params.copy()
    for name in NOT_SAVED:
        kept.pop(name, None)
    return kept.urlencode()


def view_href(blueprint_url, view):
    parts = [view.query] if view.query else []
    if view.columns:
        parts.append(urlencode({"columns": ",".join(view.columns)}))
    return f"{blueprint_url}?{'&'.join(parts)}"


def saved_view_post(request, blueprint, blueprint_url, shown_keys):
    """(a redirect, None) once the POST is done, or (None, the error of the save form's name field)."""
    actor = Actor(user=request.user, origin=AuditOrigin.UI)
    if "delete" in request.POST:
        view = saved_view_visible_to(request.user, blueprint, _int(request.POST["delete"]))
        try:
            if view is None:
                raise NotFound("That saved view no longer exists.")
            saved_view_delete(actor=actor, view=view)
        except PortalError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Deleted the view “{view.name}”.")
        return redirect(request.get_full_path()), ""
    try:
        view = saved_view_save(actor=actor, blueprint=blueprint, name=request.POST.get("name"),
                               query=view_query(request.GET), columns=list(shown_keys),
                               shared=request.POST.get("shared") == "on")
    except PortalError as exc:
        # shown under the name field: an error about the name as its message alone
        return None, "; ".join(error.message if error.path == "name" else str(error) for error in exc.errors)
    messages.success(request, f"Saved the view “{view.name}”" + (", shared with everyone who can see this blueprint."
                                                                  if view.shared else "."))
    return redirect(view_href(blueprint_url, view)), ""


def saved_views_context(request, blueprint, blueprint_url, save_error="", posted_name=""):
    current = view_query(request.GET)
    views = [{"name": view.name, "href": view_href(blueprint_url, view), "shared": view.shared,
              "owner": view.owner.email, "mine": view.owner_id == request.user.pk, "id": view.pk,
              "current": view.query == current}
             for view in saved_views_visible_to(request.user, blueprint)]
    return {"saved_views": views, "save_error": save_error, "save_name": posted_name}


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
