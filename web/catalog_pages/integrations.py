"""`/integrations/`: the Ocean integrations that fill the catalog, for admins: type, version, the last resync
(status, start, end, per-kind counts) and a "Resync now" button (served to POLLING integrations through
GET /v1/integration/{id}/resync-request). The mapping, log lines and kind examples are on the admin page."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse

from catalog.access import is_admin
from catalog.integration_admin import kind_counts
from catalog.selectors.integrations import integration_get, integrations_with_last_resync
from catalog.services.integrations import integration_resync_request
from portal.actor import Actor, AuditOrigin
from portal.errors import NotFound


@login_required
def integration_list(request):
    if not is_admin(request.user):
        raise PermissionDenied("Only admins may see integrations.")
    if request.method == "POST":
        try:
            integration = integration_get(request.POST.get("resync", ""))
        except NotFound as exc:
            messages.error(request, exc.message)
        else:
            integration_resync_request(actor=Actor(user=request.user, origin=AuditOrigin.UI), integration=integration)
            messages.success(request, f"Asked {integration.identifier} to resync: a POLLING integration starts at its "
                                      "next poll, a ONCE integration at its next run.")
        return redirect(request.path)
    rows = [{"integration": integration, "last": last, "counts": kind_counts(last.metrics) if last else "",
             "admin_url": reverse("admin:catalog_integration_change", args=[integration.pk])}
            for integration, last in integrations_with_last_resync()]
    return render(request, "catalog/integrations.html", {"rows": rows})
