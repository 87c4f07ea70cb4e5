"""`POST /v1/blueprints/entities/datasource-entities`: the entities an Ocean integration wrote, which it compares
with what a resync saw to delete the rest (port_ocean/clients/port/mixins/entities.py)."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema

from catalog.selectors.entities import entities_json, entities_of_datasource_visible_to
from portal.api.base import ApiView, ok
from portal.api.pagination import keyset_page
from portal.api.schema import refusal
from portal.datetimes import instant_field
from portal.errors import ValidationFailed

LIMIT_DEFAULT, LIMIT_MAX = 100, 10000  # Ocean pages by 5000 (DATASOURCE_ENTITIES_PAGE_SIZE)
BODY_KEYS = {"datasource_prefix", "datasource_suffix", "limit", "before", "from"}


def _text(body, key):
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ValidationFailed("is required, a non-empty string", path=key)
    return value


class DatasourceEntitiesView(ApiView):
    @extend_schema(
        summary="The entities of a datasource (an Ocean integration's own)",
        description="Body {datasource_prefix, datasource_suffix, limit (1-10000, default 100), before (ISO time: only "
                    "entities last written before it), from (the previous page's `next`)} → {entities: [{identifier, "
                    "blueprint, relations}], next}. Only entities the caller may read.",
        responses={200: OpenApiTypes.OBJECT, 401: refusal("No or an invalid access token."),
                   422: refusal("A bad field; the message starts with its name.")})
    def post(self, request):
        body = self.body()
        unknown = sorted(set(body) - BODY_KEYS)
        if unknown:
            raise ValidationFailed(f"is not a field of this route ({', '.join(sorted(BODY_KEYS))})", path=unknown[0])
        prefix, suffix = _text(body, "datasource_prefix"), _text(body, "datasource_suffix")
        limit = body.get("limit", LIMIT_DEFAULT)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= LIMIT_MAX:
            raise ValidationFailed(f"must be an integer between 1 and {LIMIT_MAX}", path="limit")
        before = instant_field(body["before"], "before") if body.get("before") is not None else None
        cursor = body.get("from")
        if cursor is not None and not isinstance(cursor, str):
            raise ValidationFailed("is not a cursor returned by this API", path="from")
        queryset = entities_of_datasource_visible_to(request.user, prefix=prefix, suffix=suffix, before=before)
        rows, next_cursor = keyset_page(queryset, limit=limit, cursor=cursor)
        entities = entities_json(rows, user=request.user, include=["identifier", "blueprint", "relations"],
                                 calculated=False)
        return ok(entities=entities, next=next_cursor)
