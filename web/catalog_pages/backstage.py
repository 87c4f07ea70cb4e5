"""`/backstage/` and `/backstage/<identifier>/`: the Backstage locations that fill the catalog, for admins —
each one's last refresh, entity count and the descriptors that did not validate (file, document, field,
message), with a "Refresh now" button. Registering and changing locations is the admin's or the API's."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse

from catalog.access import is_admin
from catalog.selectors.backstage import backstage_location_get, backstage_locations_all
from catalog.services.backstage import backstage_location_refresh
from portal.actor import Actor, AuditOrigin
from portal.errors import NotFound, PortalError


def _admins_only(request):
    if not is_admin(request.user):
        raise PermissionDenied("Only admins may see Backstage locations.")


@login_required
def backstage_location_list(request):
    _admins_only(request)
    return render(request, "catalog/backstage_locations.html", {"locations": backstage_locations_all()})


@login_required
def backstage_location_detail(request, identifier):
    _admins_only(request)
    try:
        location = backstage_location_get(identifier)
    except NotFound as exc:
        raise Http404(exc.message)
    if request.method == "POST":
        try:
            location = backstage_location_refresh(actor=Actor(user=request.user, origin=AuditOrigin.UI),
                                                  location=location)
        except PortalError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Refreshed: {location.entity_count} entities, {len(location.errors)} errors.")
        return redirect(request.path)
    return render(request, "catalog/backstage_location.html", {
        "location": location, "admin_url": reverse("admin:catalog_backstagelocation_change", args=[location.pk])})
