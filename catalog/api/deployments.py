"""CI endpoints: report a deployment, ask whether a service may deploy to an environment."""
from rest_framework.response import Response

from catalog.access import is_admin, readable_blueprint_ids
from catalog.models import Blueprint, Entity
from catalog.selectors.entities import entities_json
from catalog.services import deployments as service
from portal.api.base import ApiView, ok
from portal.errors import Forbidden


class DeploymentListView(ApiView):
    def post(self, request):
        deployment, running = service.deployment_record(actor=self.actor(), data=self.body())
        rows = {e.pk: e for e in Entity.objects.select_related("blueprint").filter(pk__in=[deployment.pk, running.pk])}
        deployment_json, running_json = entities_json([rows[deployment.pk], rows[running.pk]])
        return ok(status=201, deployment=deployment_json, runningService=running_json)


def _check_may_read_locks(user):
    if is_admin(user):
        return
    full, _owned = readable_blueprint_ids(user)
    wanted = dict(Blueprint.objects.filter(identifier__in=[service.ENVIRONMENT, service.RUNNING_SERVICE])
                  .values_list("identifier", "id"))
    if not all(pk in full for pk in wanted.values()):
        raise Forbidden("You may not read environments and running services.")


class LockView(ApiView):
    def get(self, request, service_identifier, environment):
        _check_may_read_locks(request.user)
        refusal = service.lock_find(service=service_identifier, environment=environment)
        if refusal is None:
            return ok(locked=False)
        return Response({"ok": False, "error": refusal.code, "message": refusal.message, **refusal.details},
                        status=refusal.status)
