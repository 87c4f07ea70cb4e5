"""The JSON of actions and runs as the API returns them (Port's shapes, PORT_API.md "Actions and runs")."""
from django.db.models import QuerySet, prefetch_related_objects

from actions.choices import Decision, RunStatus
from actions.credentials import invocation_masked
from actions.definitions import duration_iso
from portal.datetimes import instant_text

RUN_SELECT_RELATED = ("action", "requested_by", "result_entity__blueprint")
RUN_PREFETCH = ("approvals__approver",)


def action_json(action):
    """Port's action JSON plus our extensions (`quota`, `approvalTimeout`, `runTimeout`, `ttl`, `notifications`).
    Literal credentials in the invocation method are "[redacted]", for everybody (actions/credentials.py)."""
    return {
        "identifier": action.identifier,
        "title": action.title,
        "icon": action.icon,
        "description": action.description,
        "trigger": action.trigger,
        "invocationMethod": invocation_masked(action.invocation),
        "requiredApproval": action.required_approval,
        "approvalNotification": invocation_masked(action.approval_notification),
        "publish": action.publish,
        "quota": action.quota,
        "approvalTimeout": duration_iso(action.approval_timeout_seconds),
        "runTimeout": duration_iso(action.run_timeout_seconds),
        "ttl": action.ttl,
        "notifications": action.notifications,
        "createdBy": action.created_by,
        "updatedBy": action.updated_by,
        "createdAt": instant_text(action.created_at),
        "updatedAt": instant_text(action.updated_at),
    }


def _approval_json(run):
    """null when the run needed no approval; else the state of the decisions so far."""
    if run.required_approval in (False, None):
        return None
    decisions = list(run.approvals.all())
    if run.status == RunStatus.DECLINED or any(d.decision == Decision.DECLINE for d in decisions):
        status = "DECLINED"
    elif run.status == RunStatus.WAITING_FOR_APPROVAL:
        status = "PENDING"
    else:
        status = "APPROVED"
    return {
        "status": status,
        "description": decisions[-1].description if decisions else "",
        "decisions": [{"userId": d.approver.email, "state": d.decision, "description": d.description, "at": instant_text(d.at)}
                      for d in decisions],
    }


def payload_readable_by(viewer, run) -> bool:
    """What a run sent and received was rendered with its requester's read permission (an automation's, with
    everything): only the requester and admins read it. `viewer` None is the portal itself."""
    from catalog.access import is_admin

    return viewer is None or is_admin(viewer) or (run.requested_by_id is not None and run.requested_by_id == viewer.pk)


def run_json(run, viewer=None):
    """Port's run JSON as `viewer` may read it (None: the portal itself); `result` (ours) names the entity a CREATE
    run produced. Load runs through `runs_json` (or with RUN_SELECT_RELATED / RUN_PREFETCH) so this makes no
    queries of its own."""
    result = run.result_entity
    payload_shown = payload_readable_by(viewer, run)
    return {
        "id": run.id,
        "action": {"identifier": run.action.identifier, "title": run.action.title},
        "blueprint": {"identifier": run.blueprint_identifier},
        "entity": {"identifier": run.entity_identifier, "title": run.entity_title} if run.entity_identifier else None,
        "properties": run.properties,
        "status": run.status,
        "statusLabel": run.status_label,
        "link": list(run.links or []),
        "summary": run.summary,
        "source": run.origin,
        "requiredApproval": run.required_approval,
        "approval": _approval_json(run),
        "payload": run.payload if payload_shown else None,
        "response": run.response if payload_shown else None,
        "externalRunId": run.external_run_id or None,
        "createdBy": run.requested_by.email if run.requested_by else None,
        "createdAt": instant_text(run.created_at),
        "updatedAt": instant_text(run.updated_at),
        "endedAt": instant_text(run.ended_at),
        "waitingFor": run_waiting_for(run),
        **({"result": {"identifier": result.identifier, "blueprint": result.blueprint.identifier}} if result else {}),
    }


def run_waiting_for(run) -> str | None:
    """What the run waits for, in words (ours, next to Port's fields); None once it has ended."""
    from actions.backends import delivery_max_attempts

    if run.status == RunStatus.WAITING_FOR_APPROVAL:
        return "approval"
    if run.status != RunStatus.IN_PROGRESS:
        return None
    if run.next_attempt_at is None and run.dispatched_at is not None and run.delivery_lease_until is None:
        return "the receiver's report"
    of = delivery_max_attempts(run.action)  # may read the organization's settings: only for runs in delivery
    if run.next_attempt_at is not None:
        return f"delivery (attempt {run.attempts + 1} of {of}, next at {instant_text(run.next_attempt_at)})"
    if run.dispatched_at is None:
        return f"delivery (attempt 1 of {of})"
    return f"delivery (attempt {run.attempts} of {of}, under way until {instant_text(run.delivery_lease_until)})"


def runs_json(runs, viewer=None):
    """Run JSON for many runs as `viewer` may read them, with a constant number of queries (a queryset or a list)."""
    if isinstance(runs, QuerySet):
        runs = list(runs.select_related(*RUN_SELECT_RELATED).prefetch_related(*RUN_PREFETCH))
    else:
        runs = list(runs)
        prefetch_related_objects(runs, *RUN_SELECT_RELATED, *RUN_PREFETCH)
    return [run_json(run, viewer) for run in runs]
