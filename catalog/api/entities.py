from catalog.access import blueprint_access
from catalog.models import Entity
from catalog.selectors.blueprints import blueprint_get
from catalog.selectors.entities import entities_json, entities_visible_to, entity_get
from catalog.selectors.search_pages import entity_document, written_documents
from catalog.services import entities as service
from portal.api.base import ApiView, JsonText, ok, query_bool, query_int, require, token_check
from portal.api.pagination import keyset_page
from portal.errors import ValidationFailed

BULK_MAX = 20


def _paths(request):
    return request.query_params.getlist("include"), request.query_params.getlist("exclude")


def _write_options(request):
    return {
        "create_missing_related": query_bool(request, "create_missing_related_entities"),
        "validation_only": query_bool(request, "validation_only"),
        "run_id": request.query_params.get("run_id", ""),
    }


def _create_mode(request):
    upsert, merge = query_bool(request, "upsert"), query_bool(request, "merge")  # both checked, used or not
    if not upsert:
        return service.CREATE
    return service.UPSERT_MERGE if merge else service.UPSERT


def _render_one(request, blueprint, entity):
    """The answer to a write: the entity as written, in one statement (catalog/selectors/search_pages.py)."""
    include, exclude = _paths(request)
    return JsonText(written_documents([(blueprint.identifier, entity.identifier)], user=request.user, include=include,
                                      exclude=exclude)[0])


def _only_entities(body):
    """The `entities` of a bulk body, which holds nothing else."""
    unknown = sorted(set(body) - {"entities"})
    if unknown:
        raise ValidationFailed("is not a field of a bulk request (entities)", path=unknown[0])
    return body.get("entities")


class EntityListView(ApiView):
    repeatable_query = ("include", "exclude")

    def get(self, request, blueprint):
        bp = blueprint_get(blueprint)
        include, exclude = _paths(request)
        limit = query_int(request, "limit", 1000, minimum=1, maximum=10000)
        queryset = entities_visible_to(request.user, Entity.objects.filter(blueprint=bp))
        rows, next_cursor = keyset_page(queryset, limit=limit, cursor=request.query_params.get("from"))
        for row in rows:
            row.blueprint = bp
        calculated = not query_bool(request, "exclude_calculated_properties")
        payload = {"entities": entities_json(rows, user=request.user, include=include, exclude=exclude, calculated=calculated)}
        if next_cursor:
            payload["next"] = next_cursor
        return ok(**payload)

    def post(self, request, blueprint):
        bp = blueprint_get(blueprint)
        options = _write_options(request)
        write = service.entity_write_one(actor=self.actor(), blueprint=bp, data=self.body(), mode=_create_mode(request), **options)
        if options["validation_only"]:
            return ok(entity=write.after)
        return ok(status=201 if write.created else 200, entity=_render_one(request, bp, write.entity))


class EntityBulkView(ApiView):
    def post(self, request, blueprint):
        bp = blueprint_get(blueprint)
        items = _only_entities(self.body())
        if not isinstance(items, list) or not 1 <= len(items) <= BULK_MAX:
            raise ValidationFailed(f"must be a list of 1 to {BULK_MAX} entities", path="entities")
        writes = service.entities_write(actor=self.actor(), blueprint=bp, items=items, mode=_create_mode(request),
                                        **_write_options(request))
        done = [{"identifier": w.identifier, "index": w.index, "created": w.created} for w in writes if w.error is None]
        errors = [{"identifier": w.identifier if isinstance(w.identifier, str) else None, "index": w.index,
                   "statusCode": w.error.status, "error": w.error.code, "message": w.error.message}
                  for w in writes if w.error is not None]
        return ok(status=207 if errors else 200, entities=done, errors=errors)


class EntityDetailView(ApiView):
    repeatable_query = ("include", "exclude")
    token_check_rides = ("GET",)  # a read: the document's statement checks the bearer token too

    def get(self, request, blueprint, identifier):
        include, exclude = _paths(request)
        calculated = not query_bool(request, "exclude_calculated_properties")
        return ok(entity=JsonText(entity_document(blueprint, identifier, user=request.user, include=include,
                                                  exclude=exclude, calculated=calculated,
                                                  token_check=token_check(request))))

    def _write(self, request, blueprint, identifier, mode):
        bp = blueprint_get(blueprint)
        entity_get(bp, identifier, user=request.user)  # 404 for what the caller cannot see
        options = _write_options(request)
        write = service.entity_write_one(actor=self.actor(), blueprint=bp, data=self.body(), mode=mode,
                                         identifier=identifier, **options)
        if options["validation_only"]:
            return ok(entity=write.after)
        return ok(entity=_render_one(request, bp, write.entity))

    def put(self, request, blueprint, identifier):
        return self._write(request, blueprint, identifier, service.REPLACE)

    def patch(self, request, blueprint, identifier):
        return self._write(request, blueprint, identifier, service.PATCH)

    def delete(self, request, blueprint, identifier):
        bp = blueprint_get(blueprint)
        entity_get(bp, identifier, user=request.user)
        deleted, dependents = service.entities_delete(actor=self.actor(), blueprint=bp, identifiers=[identifier],
                                                      delete_dependents=query_bool(request, "delete_dependents"),
                                                      run_id=request.query_params.get("run_id", ""))
        return ok(deletedDependents=dependents) if dependents else ok()


class EntityBulkDeleteView(ApiView):
    def post(self, request, blueprint):
        bp = blueprint_get(blueprint)
        identifiers = _only_entities(self.body())
        if not isinstance(identifiers, list) or not identifiers or not all(isinstance(i, str) for i in identifiers):
            raise ValidationFailed("must be a non-empty list of entity identifiers", path="entities")
        if len(identifiers) > 100:
            raise ValidationFailed("at most 100 identifiers per request", path="entities")
        visible = set(entities_visible_to(request.user, Entity.objects.filter(blueprint=bp, identifier__in=identifiers))
                      .values_list("identifier", flat=True))
        unseen = [i for i in identifiers if i not in visible]
        if unseen:
            from portal.errors import NotFound

            raise NotFound(f"Entity {unseen[0]!r} of blueprint {bp.identifier!r} was not found.")
        require(blueprint_access(request.user, bp).full or blueprint_access(request.user, bp).owned,
                f"You may not delete entities of blueprint {bp.identifier!r}.")
        actor = self.actor()
        deleted, dependents = service.entities_delete(actor=actor, blueprint=bp, identifiers=identifiers,
                                                      delete_dependents=query_bool(request, "delete_dependents"),
                                                      owned_only=bool(actor.datasource))
        return ok(deletedEntities=deleted + dependents)
