"""The execution agent's routes (PORT_API.md "Execution agent"): thin views over actions.services.agent.

Agents authenticate with an admin's machine credential; a user's session or a personal token gets 403.
Unknown body keys are ignored here (Port's agent sends `invocationMethod` with its claims, and may send
more as it evolves).
"""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema

from actions.models import Run
from catalog.access import is_admin
from portal.api.base import ApiView, ok, require
from portal.api.schema import refusal
from portal.errors import NotFound, ValidationFailed

AGENT_ONLY = "Only an admin's machine credential (an execution agent) may use this route."
UNAUTHORIZED = refusal("No or an invalid access token.")
FORBIDDEN = refusal(AGENT_ONLY)
INVALID = refusal("A bad field; the message starts with its name.")


class AgentView(ApiView):
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        claims = request.auth if isinstance(request.auth, dict) else {}
        require(bool(claims.get("isMachine")) and is_admin(request.user), AGENT_ONLY)


def _runs_json(runs):
    from actions.serializers import runs_json

    return runs_json(runs)


class RunsClaimView(AgentView):
    """POST /v1/actions/runs/claim-pending {installationId, limit, visibilityTimeoutMs?} → {ok, runs}."""

    def post(self, request):
        from actions.services.agent import agent_runs_claim

        body = self.body()
        claimed = agent_runs_claim(actor=self.actor(), installation_id=body.get("installationId"),
                                   limit=body.get("limit"), visibility_timeout_ms=body.get("visibilityTimeoutMs"),
                                   invocation_method=body.get("invocationMethod"))
        runs = [run for run, _ in claimed]
        return ok(runs=[{**document, "payload": payload}
                        for document, (_, payload) in zip(_runs_json(runs), claimed)])


class RunsAckView(AgentView):
    """PATCH /v1/actions/runs/ack {runIds: [...]} or {runId} (Ocean's action processor acks one run) →
    {ok, ackedCount}."""

    def patch(self, request):
        from actions.services.agent import agent_runs_ack

        body = self.body()
        run_ids = body.get("runIds")
        if run_ids is None and "runId" in body:
            if not isinstance(body["runId"], str) or not body["runId"]:
                raise ValidationFailed("must be a run id", path="runId")
            run_ids = [body["runId"]]
        return ok(ackedCount=agent_runs_ack(actor=self.actor(), run_ids=run_ids))


class RunResponseView(AgentView):
    """PATCH /v1/actions/runs/{id}/response {response} → {ok, run}."""

    def patch(self, request, run_id):
        from actions.services.agent import agent_run_response_record

        body = self.body()
        if "response" not in body:
            raise ValidationFailed("is required", path="response")
        run = Run.objects.filter(pk=run_id).first()
        if run is None:
            raise NotFound(f"Run {run_id!r} was not found.")
        run = agent_run_response_record(actor=self.actor(), run=run, response=body["response"])
        return ok(run=_runs_json(Run.objects.filter(pk=run.pk))[0])


class WorkflowRunsClaimView(AgentView):
    """POST /v1/workflows/runs/claim-pending → {ok, nodeRuns: []}: the portal has no workflows, but agents
    poll this route and back off when it is missing."""

    def post(self, request):
        self.body()  # a JSON object, as on every route that takes one
        return ok(nodeRuns=[])


ORGANIZATION = {"id": "portal", "name": "Portal", "featureFlags": [], "isBlocked": False}


class OrganizationView(AgentView):
    """GET /v1/organization → {ok, organization} for any caller (Ocean integrations read `featureFlags` and
    `isBlocked` on start); PATCH {settings} → {ok, organization} for agents, which announce themselves there
    (`{"settings": {"portAgentStreamerName": "POLLING"}}`). The portal has one organization, and its
    settings are stored (actions.services.agent.organization_settings_update): `portAgentStreamerName` KAFKA sends
    agent runs through Kafka, `changelogDestination` {"type": "KAFKA"} publishes every change to the change log."""

    def initial(self, request, *args, **kwargs):
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return ApiView.initial(self, request, *args, **kwargs)
        return super().initial(request, *args, **kwargs)

    @extend_schema(summary="The organization", responses={200: OpenApiTypes.OBJECT, 401: UNAUTHORIZED})
    def get(self, request):
        from portal.organization import organization_settings

        return ok(organization={**ORGANIZATION, "settings": organization_settings()})

    @extend_schema(summary="Acknowledge an execution agent's settings",
                   responses={200: OpenApiTypes.OBJECT, 403: FORBIDDEN, 422: INVALID})
    def patch(self, request):
        body = self.body()
        from actions.services.agent import organization_settings_update

        org_settings = organization_settings_update(actor=self.actor(), settings=body.get("settings", {}))
        return ok(organization={**ORGANIZATION, "settings": org_settings})
