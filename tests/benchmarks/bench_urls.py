"""The benchmark server's URLconf: every portal URL, plus `/bench/bare-lock/<service>/<environment>`.

The bare view is the floor the lock check API is measured against: the same single indexed query
(`LOCKS_SQL`) behind a plain Django view, with no DRF, no authentication, no permission check and no
/v1 rate-limit counter; it answers what `GET /v1/locks/...` answers (200 unlocked, 423 locked, 404 for an
unknown environment), without the lock's details. Mounted only by bench_settings.py.
"""
from django.db import connection
from django.http import JsonResponse
from django.urls import path

from catalog.services.deployments import ENVIRONMENT, LOCKS_SQL, RUNNING_SERVICE, running_service_identifier
from web.urls import urlpatterns as portal_urlpatterns


def bare_lock(request, service, environment):
    with connection.cursor() as cursor:
        cursor.execute(LOCKS_SQL, {"environment": environment, "env_blueprint": ENVIRONMENT, "rs_blueprint": RUNNING_SERVICE,
                                   "running_service": running_service_identifier(service, environment)})
        row = cursor.fetchone()
    if row is None:
        return JsonResponse({"ok": False, "error": "not_found", "message": f"environment: {environment!r} is unknown"},
                            status=404)
    if row[0] == "true" or row[4] == "true":  # the environment's, then the running service's `locked`
        return JsonResponse({"ok": False, "error": "locked", "message": "locked"}, status=423)
    return JsonResponse({"ok": True, "locked": False})


urlpatterns = [
    path("bench/bare-lock/<str:service>/<str:environment>", bare_lock),
    *portal_urlpatterns,
]
