"""Ocean integrations (Port's `/v1/integration` routes, as Ocean's client `port_ocean/clients/port/mixins/
integrations.py` calls them): thin views over catalog.services.integrations.

Integrations configure the catalog, so only admins (and an admin's machine credential, which is what an
integration authenticates with) may use these routes."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema

from catalog.access import is_admin
from catalog.selectors.integrations import (integration_document, integration_get, integration_resync_request_document,
                                            integrations_all)
from catalog.services import integrations as services
from portal.api.base import ApiView, ok, require
from portal.api.schema import refusal

ADMINS_ONLY = "Only admins (and their machine credentials) may use integrations."
UNAUTHORIZED = refusal("No or an invalid access token.")
FORBIDDEN = refusal(ADMINS_ONLY)
NOT_FOUND = refusal("No integration with this identifier.")
INVALID = refusal("A bad field; the message starts with its JSON path, e.g. "
                  "`config.resources[2].port.entity.mappings.identifier: jq does not compile: ...`.")
CONFLICT = refusal("An integration with this installationId exists.")
IDENTIFIER = OpenApiParameter("identifier", str, OpenApiParameter.PATH, description="The integration's installationId.")
KIND = OpenApiParameter("kind", str, OpenApiParameter.PATH, description="A kind of the integration's mapping.")
EVENT_ID = OpenApiParameter("event_id", str, OpenApiParameter.PATH, description="The resync's event id.")
ANSWERS = {401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND, 422: INVALID}


class IntegrationView(ApiView):
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        require(is_admin(request.user), ADMINS_ONLY)

    def document(self, integration):
        return integration_document(integration, api_base=self.request.build_absolute_uri("/v1"))

    def check_blueprints(self):
        """Ocean sends its default mapping before creating the blueprints it names; a person's mapping must
        name blueprints that exist."""
        return not self.actor().datasource


class IntegrationListView(IntegrationView):
    @extend_schema(summary="List integrations", responses={200: OpenApiTypes.OBJECT, 401: UNAUTHORIZED, 403: FORBIDDEN})
    def get(self, request):
        return ok(integrations=[self.document(integration) for integration in integrations_all()])

    @extend_schema(summary="Register an integration",
                   description="Body: installationId, installationAppType, version, config, changelogDestination, "
                               "and Ocean's other keys (kept as sent).",
                   responses={201: OpenApiTypes.OBJECT, 401: UNAUTHORIZED, 403: FORBIDDEN, 409: CONFLICT, 422: INVALID})
    def post(self, request):
        integration = services.integration_create(actor=self.actor(), data=self.body(),
                                                  check_blueprints=self.check_blueprints())
        return ok(status=201, integration=self.document(integration))


class IntegrationProvisionEnabledView(IntegrationView):
    @extend_schema(summary="Integration types whose defaults the portal provisions (none)",
                   responses={200: OpenApiTypes.OBJECT, 401: UNAUTHORIZED, 403: FORBIDDEN})
    def get(self, request):
        return ok(integrations=[])


class IntegrationDetailView(IntegrationView):
    @extend_schema(summary="An integration", parameters=[IDENTIFIER],
                   responses={200: OpenApiTypes.OBJECT, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND})
    def get(self, request, identifier):
        return ok(integration=self.document(integration_get(identifier)))

    @extend_schema(summary="Update an integration", parameters=[IDENTIFIER],
                   responses={200: OpenApiTypes.OBJECT, **ANSWERS})
    def patch(self, request, identifier):
        integration = services.integration_update(actor=self.actor(), integration=integration_get(identifier),
                                                  data=self.body(), check_blueprints=self.check_blueprints())
        return ok(integration=self.document(integration))


class IntegrationConfigView(IntegrationView):
    @extend_schema(summary="Set an integration's mapping config", parameters=[IDENTIFIER],
                   description="Body {config}: resources [kind, selector.query, port.entity.mappings], "
                               "deleteDependentEntities, createMissingRelatedEntities, enableMergeEntity, "
                               "entityDeletionThreshold. A broken jq expression or an unknown blueprint is refused "
                               "with 422 naming its path.",
                   responses={200: OpenApiTypes.OBJECT, **ANSWERS})
    def patch(self, request, identifier):
        body = self.body()
        integration = services.integration_update(actor=self.actor(), integration=integration_get(identifier),
                                                  data={"config": body.get("config")},
                                                  check_blueprints=self.check_blueprints())
        return ok(integration=self.document(integration))


class IntegrationResyncStateView(IntegrationView):
    @extend_schema(summary="Report a resync's state", parameters=[IDENTIFIER],
                   description="Body {status: running | completed | failed | aborted, lastResyncStart, lastResyncEnd, "
                               "nextResync, intervalInMinuets}; an unknown status is 422.",
                   responses={200: OpenApiTypes.OBJECT, **ANSWERS})
    def patch(self, request, identifier):
        integration = services.integration_resync_state_update(actor=self.actor(), integration=integration_get(identifier),
                                                               data=self.body())
        return ok(integration=self.document(integration))


class IntegrationResyncRequestView(IntegrationView):
    @extend_schema(summary="The last resync request (POLLING integrations poll it)", parameters=[IDENTIFIER],
                   responses={200: OpenApiTypes.OBJECT, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND})
    def get(self, request, identifier):
        return ok(request=integration_resync_request_document(integration_get(identifier)))

    @extend_schema(summary="Resync now", parameters=[IDENTIFIER],
                   responses={200: OpenApiTypes.OBJECT, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND})
    def post(self, request, identifier):
        integration = services.integration_resync_request(actor=self.actor(), integration=integration_get(identifier))
        return ok(request=integration_resync_request_document(integration))


class IntegrationLogsView(IntegrationView):
    @extend_schema(summary="Ingest log lines (the integration's logAttributes.ingestUrl)", parameters=[IDENTIFIER],
                   responses={200: OpenApiTypes.OBJECT, **ANSWERS})
    def post(self, request, identifier):
        services.integration_logs_ingest(integration=integration_get(identifier), data=self.body())
        return ok()


class IntegrationSyncMetricsView(IntegrationView):
    @extend_schema(summary="Ingest the metrics of a resync (metricAttributes.ingestUrl + /syncMetrics)",
                   parameters=[IDENTIFIER], responses={200: OpenApiTypes.OBJECT, **ANSWERS})
    def post(self, request, identifier):
        integration = integration_get(identifier)
        metrics = self.body().get("syncKindsMetrics")
        if not isinstance(metrics, list):
            metrics = None
        for item in metrics or []:
            if isinstance(item, dict) and isinstance(item.get("kindIdentifier"), str):
                services.integration_kind_metrics_record(integration=integration, event_id=str(item.get("eventId", "")),
                                                         kind=item["kindIdentifier"], metrics=item)
        return ok()


class IntegrationKindMetricsView(IntegrationView):
    @extend_schema(summary="Ingest the metrics of one kind of a resync", parameters=[IDENTIFIER, EVENT_ID, KIND],
                   responses={200: OpenApiTypes.OBJECT, **ANSWERS})
    def put(self, request, identifier, event_id, kind):
        services.integration_kind_metrics_record(integration=integration_get(identifier), event_id=event_id, kind=kind,
                                                 metrics=self.body().get("syncKindMetrics"))
        return ok()


class IntegrationHeartbeatView(IntegrationView):
    @extend_schema(summary="A resync's heartbeat (acknowledged)", parameters=[IDENTIFIER],
                   responses={200: OpenApiTypes.OBJECT, 401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND})
    def post(self, request, identifier):
        integration_get(identifier)
        return ok()


class IntegrationKindExamplesView(IntegrationView):
    @extend_schema(summary="Keep examples of a kind's raw objects", parameters=[IDENTIFIER, KIND],
                   responses={200: OpenApiTypes.OBJECT, **ANSWERS})
    def post(self, request, identifier, kind):
        services.integration_kind_examples_record(integration=integration_get(identifier), kind=kind, data=self.body())
        return ok()
