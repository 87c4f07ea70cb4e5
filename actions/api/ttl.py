"""POST /v1/blueprints/{bp}/entities/{id}/ttl/extend (ours): the built-in "Extend TTL" day-2 operation of every
blueprint with a TTL policy. A thin view over actions.services.ttl.ttl_extend, which decides who may extend."""
from catalog.models import Entity
from catalog.selectors.entities import entities_json, entities_visible_to
from portal.api.base import ApiView, ok
from portal.errors import NotFound


class EntityTtlExtendView(ApiView):
    """→ 200 {ok, entity, ttl: {property, expiresAt, maximumAt, extendBy}}."""

    def post(self, request, blueprint, identifier):
        from actions.services.ttl import ttl_extend

        queryset = Entity.objects.select_related("blueprint").filter(blueprint__identifier=blueprint, identifier=identifier)
        entity = entities_visible_to(request.user, queryset).first()
        if entity is None:
            raise NotFound(f"Entity {identifier!r} of blueprint {blueprint!r} was not found.")
        ttl = ttl_extend(actor=self.actor(), entity=entity)
        entity = Entity.objects.select_related("blueprint").get(pk=entity.pk)
        return ok(entity=entities_json([entity], user=request.user)[0], ttl=ttl)
