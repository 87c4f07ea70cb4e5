"""`/v1/backstage/locations`: register, list, read, refresh and delete Backstage locations (thin views over
catalog.services.backstage). Locations fill the catalog, so only admins (and their machine credentials) may
use these routes."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema

from catalog.access import is_admin
from catalog.selectors.backstage import backstage_location_get, backstage_locations_all, backstage_location_document
from catalog.services import backstage as services
from portal.api.base import ApiView, ok, query_bool, require
from portal.api.schema import refusal

ADMINS_ONLY = "Only admins (and their machine credentials) may manage Backstage locations."
UNAUTHORIZED = refusal("No or an invalid access token.")
FORBIDDEN = refusal(ADMINS_ONLY)
NOT_FOUND = refusal("No Backstage location with this identifier.")
INVALID = refusal("A bad field; the message starts with its name.")
IDENTIFIER = OpenApiParameter("identifier", str, OpenApiParameter.PATH, description="The location's identifier.")
INSTALL = OpenApiParameter("install_blueprints", bool, OpenApiParameter.QUERY,
                           description="Install the Backstage blueprints first (those missing).")


class BackstageView(ApiView):
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        require(is_admin(request.user), ADMINS_ONLY)


class BackstageLocationListView(BackstageView):
    @extend_schema(summary="List Backstage locations", responses={200: OpenApiTypes.OBJECT, 401: UNAUTHORIZED,
                                                                  403: FORBIDDEN})
    def get(self, request):
        return ok(locations=[backstage_location_document(location) for location in backstage_locations_all()])

    @extend_schema(summary="Register a Backstage location",
                   description="Body {identifier, type (file | url | github), target (an absolute path under "
                               "BACKSTAGE_FILE_ROOTS, a URL under BACKSTAGE_URL_ALLOWED_PREFIXES, or a GitHub "
                               "organization), catalogPath (github: each repository's descriptor, default "
                               "catalog-info.yaml), refreshIntervalMinutes (default 30)}. Beat refreshes it within a "
                               "minute; POST .../refresh does it now.",
                   responses={201: OpenApiTypes.OBJECT, 401: UNAUTHORIZED, 403: FORBIDDEN,
                              409: refusal("A location with this identifier exists."), 422: INVALID})
    def post(self, request):
        location = services.backstage_location_register(actor=self.actor(), data=self.body())
        return ok(status=201, location=backstage_location_document(location))


class BackstageLocationDetailView(BackstageView):
    @extend_schema(summary="A Backstage location: its last refresh, entity count and errors", parameters=[IDENTIFIER],
                   responses={200: OpenApiTypes.OBJECT, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND})
    def get(self, request, identifier):
        return ok(location=backstage_location_document(backstage_location_get(identifier)))

    @extend_schema(summary="Delete a Backstage location and the entities it wrote", parameters=[IDENTIFIER],
                   responses={200: OpenApiTypes.OBJECT, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND})
    def delete(self, request, identifier):
        services.backstage_location_delete(actor=self.actor(), location=backstage_location_get(identifier))
        return ok()


class BackstageLocationRefreshView(BackstageView):
    @extend_schema(summary="Refresh a Backstage location now",
                   description="Reads the location and brings the catalog in line with it before answering; "
                               "descriptors that do not validate are in the location's `errors` "
                               "[{file, document, field, message}].",
                   parameters=[IDENTIFIER, INSTALL],
                   responses={200: OpenApiTypes.OBJECT, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND,
                              422: refusal("The Backstage blueprints are not installed.")})
    def post(self, request, identifier):
        location = backstage_location_get(identifier)
        if query_bool(request, "install_blueprints"):
            services.backstage_blueprints_install(actor=self.actor())
        location = services.backstage_location_refresh(actor=self.actor(), location=location)
        return ok(location=backstage_location_document(location))
