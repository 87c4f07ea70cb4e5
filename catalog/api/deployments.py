"""Deployment endpoints: CI reports a deployment and asks whether a service may deploy to an environment;
people and dashboards read deployments, where services run, and the DORA metrics."""
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from catalog.selectors import deployments as selectors
from catalog.selectors.search_pages import written_documents
from catalog.services import deployments as recording
from portal.api.base import ApiView, JsonText, ok, query_int, token_check
from portal.api.openapi import ERROR, ERROR_SCHEMA

LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX = 50, 1000

# --- OpenAPI: the bodies are plain JSON envelopes (PORT_API.md), described here as raw schemas. -----------------

STRING, NULLABLE_STRING = {"type": "string"}, {"type": "string", "nullable": True}
DATE_TIME = {"type": "string", "format": "date-time", "nullable": True}


def _envelope(properties, required=()):
    return {"type": "object", "required": ["ok", *required],
            "properties": {"ok": {"type": "boolean", "enum": [True]}, **properties}}


LOCK = {"type": "object", "required": ["scope", "reason", "by", "at"], "properties": {
    "scope": {"type": "string", "enum": ["environment", "service"],
              "description": "What refused: the environment (wins when both are locked) or the running service."},
    "reason": NULLABLE_STRING, "by": NULLABLE_STRING, "at": DATE_TIME}}
LOCKED = {"type": "object", "required": ["ok", "error", "message", "lock"], "properties": {
    **ERROR_SCHEMA["properties"], "error": {"type": "string", "enum": ["locked"]}, "lock": LOCK}}
ENTITY = {"type": "object", "description": "Entity JSON, as GET /v1/blueprints/{blueprint}/entities/{identifier} returns it.",
          "additionalProperties": True}
ENTITY_LOCK = {"type": "object", "properties": {"locked": {"type": "boolean"}, "reason": NULLABLE_STRING,
                                                "by": NULLABLE_STRING, "at": DATE_TIME, "until": DATE_TIME}}
DEPLOYMENT_REPORT = {"type": "object", "required": list(recording.REQUIRED_FIELDS), "additionalProperties": False, "properties": {
    "service": {"type": "string", "description": "Identifier of a Component entity."},
    "environment": {"type": "string", "description": "Identifier of an environment entity."},
    "version": STRING,
    "commitSha": STRING,
    "jobUrl": {"type": "string", "format": "uri"},
    "commitTime": {"type": "string", "format": "date-time", "description": "With a UTC offset or Z; feeds lead time."},
    "status": {"type": "string", "enum": list(recording.STATUSES), "default": "success",
               "description": "A failure is recorded but leaves the running version as it was."},
    "deployedBy": {"type": "string", "description": "Defaults to the caller."},
}}
DEPLOYMENT_ROW = {"type": "object", "properties": {
    "identifier": STRING, "runningService": STRING, "service": STRING, "environment": STRING,
    "version": NULLABLE_STRING, "commitSha": NULLABLE_STRING, "commitTime": DATE_TIME, "jobUrl": NULLABLE_STRING,
    "status": {"type": "string", "enum": list(recording.STATUSES), "nullable": True}, "deployedBy": NULLABLE_STRING,
    "startedAt": DATE_TIME, "finishedAt": DATE_TIME}}
RUNNING_SERVICE_ROW = {"type": "object", "properties": {
    "identifier": STRING,
    "service": {"type": "object", "properties": {"identifier": STRING, "title": STRING}},
    "environment": {"type": "object", "properties": {"identifier": STRING, "type": NULLABLE_STRING, "lock": ENTITY_LOCK}},
    "version": NULLABLE_STRING, "commitSha": NULLABLE_STRING, "jobUrl": NULLABLE_STRING, "deployedBy": NULLABLE_STRING,
    "deployedAt": DATE_TIME, "health": NULLABLE_STRING, "lock": ENTITY_LOCK}}
SECONDS = {"type": "number", "nullable": True}
DORA = {"type": "object", "properties": {
    "period": {"type": "object", "properties": {"from": {"type": "string", "format": "date-time"},
                                                "to": {"type": "string", "format": "date-time"}}},
    "filters": {"type": "object", "properties": {"service": NULLABLE_STRING, "team": NULLABLE_STRING,
                                                 "environment": NULLABLE_STRING}},
    "deploymentFrequency": {"type": "object", "properties": {
        "deployments": {"type": "integer", "description": "Successful deployments in the period."},
        "perDay": {"type": "number"}, "perWeek": {"type": "number"}}},
    "leadTimeForChanges": {"type": "object", "description": "finishedAt − commitTime of successful deployments with a commitTime.",
                           "properties": {"medianSeconds": SECONDS, "p90Seconds": SECONDS, "samples": {"type": "integer"}}},
    "changeFailureRate": {"type": "object", "properties": {
        "failed": {"type": "integer"}, "total": {"type": "integer"}, "rate": {"type": "number", "nullable": True}}},
    "timeToRestore": {"type": "object", "description": "Per failed deployment: until the next successful deployment of "
                      "the same running service, which may come after `to`; none yet counts as unresolved.",
                      "properties": {"medianSeconds": SECONDS, "samples": {"type": "integer"}, "unresolved": {"type": "integer"}}},
    "series": {"type": "array", "items": {"type": "object", "properties": {
        "date": {"type": "string", "format": "date"}, "success": {"type": "integer"}, "failure": {"type": "integer"}}}},
}}

NOT_FOUND = OpenApiResponse(ERROR, description="An unknown service, environment or team (the message names which).")
INVALID = OpenApiResponse(ERROR, description="A bad parameter or field; the message starts with its name.")
FORBIDDEN = OpenApiResponse(ERROR, description="Not allowed.")


def _filter(name, what):
    return OpenApiParameter(name, str, description=f"Only {what}; 404 when it names nothing you may read.")


SERVICE = _filter("service", "this service (Component identifier)")
ENVIRONMENT = _filter("environment", "this environment (identifier)")
TEAM = _filter("team", "services owned by this team (name)")
FROM = OpenApiParameter("from", str, description=(
    "Start (inclusive) of the finishedAt range: an ISO date or date-time (no offset = UTC)."))
TO = OpenApiParameter("to", str, description=(
    "End (exclusive) of the finishedAt range: an ISO date-time, or a date meaning the end of that day."))


# --- Views -----------------------------------------------------------------------------------------------------

def _filters(request, *names):
    """The filter query parameters; an empty value is no filter."""
    return {name: request.query_params.get(name) or None for name in names}


class DeploymentListView(ApiView):
    @extend_schema(
        summary="List deployments",
        description="Newest first (by finishedAt), only those whose service, environment and running service you "
                    "may read.",
        parameters=[SERVICE, ENVIRONMENT, TEAM, FROM, TO,
                    OpenApiParameter("limit", int, description=f"1 to {LIST_LIMIT_MAX}, default {LIST_LIMIT_DEFAULT}.")],
        responses={200: _envelope({"deployments": {"type": "array", "items": DEPLOYMENT_ROW}}, ["deployments"]),
                   404: NOT_FOUND, 422: INVALID},
    )
    def get(self, request):
        params = request.query_params
        since, until = selectors.period_parse(params.get("from"), params.get("to"))
        limit = query_int(request, "limit", LIST_LIMIT_DEFAULT, minimum=1, maximum=LIST_LIMIT_MAX)
        deployments = selectors.deployments_visible_to(request.user, **_filters(request, "service", "environment", "team"),
                                                       since=since, until=until, limit=limit)
        return ok(deployments=deployments)

    @extend_schema(
        summary="Report a deployment (CI)",
        description="Records the deployment and, when it succeeded, the version now running at "
                    "`<service>-<environment>`, in one step that a lock cannot slip past. Refused with 423 while "
                    "the environment or the running service is locked; the refusal is audited.",
        request={"application/json": DEPLOYMENT_REPORT},
        responses={201: _envelope({"deployment": ENTITY, "runningService": ENTITY}, ["deployment", "runningService"]),
                   403: OpenApiResponse(ERROR, description="No register permission on blueprint 'deployment'."),
                   404: OpenApiResponse(ERROR, description="Unknown service or environment (the message names which)."),
                   422: OpenApiResponse(ERROR, description="A bad field; the message starts with its name."),
                   423: OpenApiResponse(LOCKED, description="The environment or the running service is locked.")},
    )
    def post(self, request):
        deployment, running = recording.deployment_record(actor=self.actor(), data=self.body())
        # One prepared statement for both: the entities as written (mirrors show what the reporter may read).
        deployment_text, running_text = written_documents([(deployment.blueprint.identifier, deployment.identifier),
                                                           (running.blueprint.identifier, running.identifier)],
                                                          user=request.user)
        return ok(status=201, deployment=JsonText(deployment_text), runningService=JsonText(running_text))


class LockView(ApiView):
    token_check_rides = ("GET",)  # a read: the lock statement checks the bearer token too

    @extend_schema(
        summary="May this service deploy to this environment? (CI)",
        description="200 when neither the environment nor the running service `<service>-<environment>` is "
                    "locked, 423 with the lock otherwise (the environment's lock wins).",
        parameters=[OpenApiParameter("service", str, OpenApiParameter.PATH, description="Component identifier."),
                    OpenApiParameter("environment", str, OpenApiParameter.PATH, description="Environment identifier.")],
        responses={200: _envelope({"locked": {"type": "boolean", "enum": [False]}}, ["locked"]),
                   403: OpenApiResponse(ERROR, description="You may not read environments and running services."),
                   404: OpenApiResponse(ERROR, description="Unknown environment."),
                   423: OpenApiResponse(LOCKED, description="Locked: deploying now would be refused.")},
    )
    def get(self, request, service, environment):
        refusal = recording.lock_find(user=request.user, service=service, environment=environment,
                                      token_check=token_check(request))
        if refusal is None:
            return ok(locked=False)
        return Response({"ok": False, "error": refusal.code, "message": refusal.message, **refusal.details},
                        status=refusal.status)


class RunningServiceListView(ApiView):
    @extend_schema(
        summary="Where services run",
        description="Every running service you may read (with its service, environment and both locks), by service "
                    "then environment (production, staging, development): per service where it runs, per "
                    "environment which version of each service runs there and whether it is locked.",
        parameters=[SERVICE, ENVIRONMENT, TEAM],
        responses={200: _envelope({"runningServices": {"type": "array", "items": RUNNING_SERVICE_ROW}}, ["runningServices"]),
                   404: NOT_FOUND},
    )
    def get(self, request):
        running = selectors.running_services_visible_to(request.user, **_filters(request, "service", "environment", "team"))
        return ok(runningServices=running)


class DoraView(ApiView):
    @extend_schema(
        summary="DORA metrics",
        description="Deployment frequency, lead time for changes, change failure rate and time to restore over the "
                    "deployments you may read whose finishedAt is in [from, to), with a per-day (UTC) series. "
                    f"Default period: the last {selectors.DEFAULT_PERIOD.days} days; at most "
                    f"{selectors.MAX_PERIOD.days} days.",
        parameters=[SERVICE, TEAM, ENVIRONMENT, FROM, TO],
        responses={200: _envelope({"dora": DORA}, ["dora"]), 404: NOT_FOUND, 422: INVALID},
    )
    def get(self, request):
        params = request.query_params
        since, until = selectors.period_parse(params.get("from"), params.get("to"), default=selectors.DEFAULT_PERIOD)
        dora = selectors.dora_metrics(request.user, **_filters(request, "service", "team", "environment"),
                                      since=since, until=until)
        return ok(dora=dora)
