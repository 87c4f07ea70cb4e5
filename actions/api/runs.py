"""/v1/actions/{id}/runs, /v1/actions/runs..., /v1/approvals: thin views over actions.services.runs/approvals.

Visibility: every run route looks the run up through `runs_visible_to` (a run the caller may not see
is 404, as if it did not exist); the services then decide what the caller may do with it (403).
"""
from actions.access import actions_visible_to, eligible_approvers
from actions.choices import RunOrigin
from actions.models import Action, Run
from actions.selectors.runs import approvals_waiting_on, runs_visible_to, time_left_seconds
from actions.state import TERMINAL
from portal.api.base import ApiView, ok, query_bool, query_int
from portal.errors import NotFound, ValidationFailed
from portal.datetimes import instant_text

MAX_LIMIT = 1000


def _runs_json(runs, viewer):
    from actions.serializers import runs_json

    return runs_json(runs, viewer)


def _run_json(run, viewer):
    return _runs_json([Run.objects.get(pk=run.pk)], viewer)[0]


def _run_get(request, run_id):
    run = runs_visible_to(request.user, Run.objects.filter(pk=run_id)).select_related("action", "requested_by").first()
    if run is None:
        raise NotFound(f"Run {run_id!r} was not found.")
    return run


def _optional_string(body, key):
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ValidationFailed("must be a string", path=key)
    return value


class ActionRunsView(ApiView):
    """POST /v1/actions/{identifier}/runs → 202 {ok, run}."""

    def post(self, request, identifier):
        from actions.services.runs import run_request

        action = actions_visible_to(request.user, Action.objects.filter(identifier=identifier)).first()
        if action is None:
            raise NotFound(f"Action {identifier!r} was not found.")
        body = self.body()
        unknown = set(body) - {"properties", "entity"}
        if unknown:
            raise ValidationFailed("is not a field of a run request (properties, entity)", path=sorted(unknown)[0])
        entity = body.get("entity")
        if entity is not None and not isinstance(entity, str):
            raise ValidationFailed("must be an entity identifier", path="entity")
        run = run_request(actor=self.actor(), action=action, properties=body.get("properties"), entity_identifier=entity,
                          run_as=request.query_params.get("run_as") or None, origin=RunOrigin.API)
        return ok(status=202, run=_run_json(run, request.user))


class RunListView(ApiView):
    """GET /v1/actions/runs with filters entity, blueprint, active, user_email, external_run_id, action, limit."""

    def get(self, request):
        params = request.query_params
        runs = runs_visible_to(request.user)
        if params.get("entity"):
            runs = runs.filter(entity_identifier=params["entity"])
        if params.get("blueprint"):
            runs = runs.filter(blueprint_identifier=params["blueprint"])
        if params.get("user_email"):
            runs = runs.filter(requested_by__email__iexact=params["user_email"])
        if params.get("external_run_id"):
            runs = runs.filter(external_run_id=params["external_run_id"])
        if params.get("action"):
            runs = runs.filter(action__identifier=params["action"])
        active = query_bool(request, "active", default=None)
        if active is True:
            runs = runs.exclude(status__in=TERMINAL)
        elif active is False:
            runs = runs.filter(status__in=TERMINAL)
        limit = query_int(request, "limit", 100, minimum=1, maximum=MAX_LIMIT)
        return ok(runs=_runs_json(runs.order_by("-created_at", "-id")[:limit], request.user))


class RunDetailView(ApiView):
    def get(self, request, run_id):
        return ok(run=_run_json(_run_get(request, run_id), request.user))

    def patch(self, request, run_id):
        from actions.services.runs import run_update

        run = _run_get(request, run_id)
        body = self.body()
        unknown = set(body) - {"status", "statusLabel", "link", "summary", "externalRunId"}
        if unknown:
            raise ValidationFailed("is not a field of a run update", path=sorted(unknown)[0])
        run = run_update(actor=self.actor(), run=run, status=body.get("status"),
                         status_label=_optional_string(body, "statusLabel"), link=body.get("link"),
                         summary=_optional_string(body, "summary"), external_run_id=_optional_string(body, "externalRunId"))
        return ok(run=_run_json(run, request.user))


def _log_json(log):
    return {"id": log.pk, "runId": log.run_id, "message": log.message, "createdAt": instant_text(log.created_at),
            **({"terminationStatus": log.termination_status} if log.termination_status else {}),
            **({"statusLabel": log.status_label} if log.status_label else {})}


class RunLogsView(ApiView):
    def get(self, request, run_id):
        run = _run_get(request, run_id)
        return ok(runLogs=[_log_json(log) for log in run.logs.order_by("id")])

    def post(self, request, run_id):
        from actions.services.runs import run_log_add

        run = _run_get(request, run_id)
        body = self.body()
        log = run_log_add(actor=self.actor(), run=run, message=body.get("message"),
                          termination_status=body.get("terminationStatus"),
                          status_label=_optional_string(body, "statusLabel"))
        return ok(status=201, runLog=_log_json(log))


class RunApprovalView(ApiView):
    def patch(self, request, run_id):
        from actions.services.approvals import approval_decide

        run = _run_get(request, run_id)
        body = self.body()
        run = approval_decide(actor=self.actor(), run=run, decision=body.get("status"),
                              description=_optional_string(body, "description") or "")
        return ok(run=_run_json(run, request.user))


class RunApproversView(ApiView):
    def get(self, request, run_id):
        from catalog.selectors.entities import entity_team_ids

        run = _run_get(request, run_id)
        decisions = {a.approver.email: a for a in run.approvals.select_related("approver")}
        eligible = [user.email for user in eligible_approvers(run.action, entity_team_ids(run.entity) if run.entity_id else (),
                                                              exclude=run.requested_by).order_by("email")]
        emails = eligible + [email for email in decisions if email not in eligible]
        states = {"APPROVE": "APPROVED", "DECLINE": "DECLINED"}
        return ok(approvers=[
            {"userId": email, "state": states[decisions[email].decision] if email in decisions else "PENDING",
             "description": decisions[email].description if email in decisions else ""}
            for email in emails
        ])


class ApprovalQueueView(ApiView):
    """GET /v1/approvals (ours): runs the caller may decide, oldest first, with the time left to decide."""

    def get(self, request):
        limit = query_int(request, "limit", 100, minimum=1, maximum=MAX_LIMIT)
        runs = list(approvals_waiting_on(request.user)[:limit])
        rendered = _runs_json(runs, request.user)
        return ok(runs=[
            {**body, "requester": body["createdBy"], "inputs": run.properties,
             "approvalDeadline": instant_text(run.approval_deadline), "timeLeftSeconds": time_left_seconds(run)}
            for run, body in zip(runs, rendered)
        ])
