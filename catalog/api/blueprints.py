from catalog.access import can_moderate, is_admin
from catalog.models import Blueprint
from catalog.selectors.blueprints import blueprint_get, blueprint_json
from catalog.selectors.entities import entities_visible_to
from catalog.services.blueprints import blueprint_create, blueprint_delete, blueprint_update
from catalog.services.permissions import blueprint_permissions_json, blueprint_permissions_update
from portal.api.base import ApiView, ok, query_bool, require


class BlueprintListView(ApiView):
    def get(self, request):
        return ok(blueprints=[blueprint_json(bp) for bp in Blueprint.objects.order_by("identifier")])

    def post(self, request):
        require(is_admin(request.user), "Only admins may create blueprints.")
        blueprint = blueprint_create(actor=self.actor(), data=self.body())
        return ok(status=201, blueprint=blueprint_json(blueprint))


class BlueprintDetailView(ApiView):
    def get(self, request, identifier):
        return ok(blueprint=blueprint_json(blueprint_get(identifier)))

    def _update(self, request, identifier, partial):
        blueprint = blueprint_get(identifier)
        require(can_moderate(request.user, blueprint), f"Only admins and moderators of {identifier!r} may change it.")
        return ok(blueprint=blueprint_json(blueprint_update(actor=self.actor(), blueprint=blueprint, data=self.body(), partial=partial)))

    def put(self, request, identifier):
        return self._update(request, identifier, partial=False)

    def patch(self, request, identifier):
        return self._update(request, identifier, partial=True)

    def delete(self, request, identifier):
        blueprint = blueprint_get(identifier)
        require(is_admin(request.user), "Only admins may delete blueprints.")
        delete_entities, delete_dependents = query_bool(request, "delete_entities"), query_bool(request, "delete_dependents")
        blueprint_delete(actor=self.actor(), blueprint=blueprint, delete_entities=delete_entities or delete_dependents)
        return ok()


class BlueprintEntitiesCountView(ApiView):
    def get(self, request, identifier):
        blueprint = blueprint_get(identifier)
        return ok(count=entities_visible_to(request.user).filter(blueprint=blueprint).count())


class BlueprintPermissionsView(ApiView):
    def get(self, request, identifier):
        blueprint = blueprint_get(identifier)
        return ok(permissions=blueprint_permissions_json(blueprint))

    def patch(self, request, identifier):
        blueprint = blueprint_get(identifier)
        require(can_moderate(request.user, blueprint), f"Only admins and moderators of {identifier!r} may change its permissions.")
        return ok(permissions=blueprint_permissions_update(actor=self.actor(), blueprint=blueprint, data=self.body()))
