"""Entity search routes: rule sets in, permission-filtered entities out (see catalog/selectors/search.py)."""
from catalog.selectors.blueprints import blueprint_definition
from catalog.selectors.entities import entities_json
from catalog.selectors.search import search_compile
from catalog.selectors.search_pages import search_page
from portal.api.base import ApiView, JsonText, ok, query_bool, query_int, token_check
from portal.errors import ValidationFailed

SEARCH_LIMIT_DEFAULT, SEARCH_LIMIT_MAX = 1000, 10000
PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX = 200, 1000
PAGE_BODY_KEYS = {"query", "include", "exclude", "limit", "from"}


def _path_list(value, field):
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationFailed("must be a list of entity JSON paths (strings)", path=field)
    return value


class EntitySearchView(ApiView):
    """`POST /v1/entities/search` — the body is a rule set; query params `include`/`exclude` (repeated),
    `exclude_calculated_properties`, and `limit`: the route answers with at most `limit` entities
    (default 1000, at most 10000) ordered by creation (id). It has no cursor, as in Port; a caller
    that needs every match of a large result pages with `POST /v1/blueprints/{bp}/entities/search`."""

    repeatable_query = ("include", "exclude")

    def post(self, request):
        rule_set = self.body()
        limit = query_int(request, "limit", SEARCH_LIMIT_DEFAULT, minimum=1, maximum=SEARCH_LIMIT_MAX)
        calculated = not query_bool(request, "exclude_calculated_properties")
        compiled = search_compile(rule_set, user=request.user)
        rows = list(compiled.queryset.order_by("id")[:limit])
        entities = entities_json(rows, user=request.user, include=request.query_params.getlist("include"),
                                 exclude=request.query_params.getlist("exclude"), calculated=calculated)
        return ok(matchingBlueprints=compiled.blueprints, entities=entities)


class BlueprintEntitySearchView(ApiView):
    """`POST /v1/blueprints/{bp}/entities/search` — body `{query, include, exclude, limit, from}`; `query`
    is an optional rule set (absent: every entity of the blueprint), `limit` defaults to 200 (at most
    1000), `from` is the `next` cursor of the previous page. Pages are keyset-paginated by id, so
    entities created between two requests never shift or repeat the rows of later pages. The page and its
    documents are one SQL statement (catalog/selectors/search_pages.py), whose JSON text is the answer's `entities`."""

    repeatable_query = ("include", "exclude")
    token_check_rides = ("POST",)  # a read: the page's statement checks the bearer token too

    def post(self, request, blueprint):
        bp = blueprint_definition(blueprint)  # the page's statement checks it is current
        body = self.body()
        unknown = sorted(set(body) - PAGE_BODY_KEYS)
        if unknown:
            raise ValidationFailed("is not a search field (query, include, exclude, limit, from)", path=unknown[0])
        limit = body.get("limit", PAGE_LIMIT_DEFAULT)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= PAGE_LIMIT_MAX:
            raise ValidationFailed(f"must be an integer between 1 and {PAGE_LIMIT_MAX}", path="limit")
        cursor = body.get("from")
        if cursor is not None and not isinstance(cursor, str):
            raise ValidationFailed("is not a cursor returned by this API", path="from")
        include, exclude = _path_list(body.get("include"), "include"), _path_list(body.get("exclude"), "exclude")
        query = body.get("query")
        if query is None:
            query = {"combinator": "and", "rules": []}
        entities, next_cursor = search_page(bp, query, user=request.user, limit=limit, cursor=cursor,
                                            include=include, exclude=exclude, token_check=token_check(request))
        return ok(entities=JsonText(entities), next=next_cursor)

    # `.../entities/search` is also the path of an entity whose identifier is "search": every method
    # but POST belongs to that entity.
    def _entity(self, request, blueprint):
        from catalog.api.entities import EntityDetailView

        view = EntityDetailView()
        view.request, view.args, view.kwargs, view.format_kwarg = request, (), {"blueprint": blueprint, "identifier": "search"}, None
        return getattr(view, request.method.lower())(request, blueprint, "search")

    get = put = patch = delete = _entity
