"""The execution agent's side of runs (PORT_API.md "Execution agent"): claim, ack, response.

WEBHOOK actions with `agent: true` are not pushed: the webhook backend records their (redacted) payload
and leaves them IN_PROGRESS, and an agent inside the customer's network pulls them. A claim hides a run
from other agents for a visibility timeout; an ack makes the hand-over final (an acked run is never handed
out again); a claim not acked in time returns the run to the pool.

Only runs whose payload the backend has recorded are claimable: from then on the backend never touches
the run again (see `run_dispatch_claim`), so it cannot overwrite what an agent reports.

Claims are not audited: agents poll every few seconds, a claim expires by itself and changes nothing
lasting, and one run may be claimed several times before an agent acks it — the audit log would fill with
noise. The ack is the hand-over that matters (which credential took responsibility for the run) and is
audited, as is the response an agent records; claims are logged at INFO.
"""
import json
import logging
from collections import defaultdict
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from actions.choices import RunStatus
from actions.models import Run
from audit import choices as audit_choices
from audit.services import audit_event_build, audit_record_many
from catalog.access import is_admin
from portal.actor import Actor
from portal.errors import Conflict, Forbidden, NotFound, ValidationFailed

logger = logging.getLogger(__name__)

# Audit verbs of this module (dotted like those in audit/choices.py).
RUN_AGENT_ACKED = "actions.run.agent_acked"
RUN_RESPONSE_RECORDED = "actions.run.response_recorded"

DEFAULT_CLAIM_LIMIT = 10
MAX_CLAIM_LIMIT = 100
DEFAULT_VISIBILITY_MS = 60_000
MIN_VISIBILITY_MS, MAX_VISIBILITY_MS = 1_000, 3_600_000
# Responses larger than this are summarised in the audit diff (the run keeps the whole response).
AUDIT_RESPONSE_BYTES = 4096


def agent_check(actor) -> None:
    """Agents authenticate with an admin's API credential; nobody else may claim, ack or answer runs here."""
    if actor.user is None or not actor.client_id or not is_admin(actor.user):
        raise Forbidden("Only an admin's API credential (an execution agent) may claim, ack or answer agent runs.")


def agent_runs():
    """Runs of WEBHOOK actions that an agent executes (`invocationMethod.agent: true`), in any status."""
    return Run.objects.filter(action__invocation_method__type="WEBHOOK", action__invocation_method__agent=True)


def _int_field(value, name, default, minimum, maximum):
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed("must be an integer", path=name)
    if not minimum <= value <= maximum:
        raise ValidationFailed(f"must be between {minimum} and {maximum}, got {value}", path=name)
    return value


def _template_contexts(runs, secrets) -> dict:
    """Template contexts of `runs`, their entities rendered in batches (run_template_context renders one entity per
    call, which would cost queries per claimed run)."""
    from actions.templating import portal_json, run_template_context
    from catalog.selectors.entities import entities_json

    # Each run's entity as its requester may read it (see run_template_context); only mirror values depend on the
    # reader, so entities without mirrors share one batch whoever asked.
    batches = defaultdict(list)
    for run in runs:
        if run.entity_id is not None:
            batches[run.requested_by_id if run.entity.blueprint.mirror_properties else "anyone"].append(run)
    documents = {}
    for batch in batches.values():
        rendered = entities_json([run.entity for run in batch], user=batch[0].requested_by)
        documents.update((run.pk, document) for run, document in zip(batch, rendered))
    contexts, portal = {}, portal_json()
    for run in runs:
        # A detached copy without its entity, so run_template_context does not render it again.
        bare = Run(**{field.attname: getattr(run, field.attname) for field in Run._meta.concrete_fields})
        bare.entity_id = None
        bare.action, bare.requested_by = run.action, run.requested_by
        contexts[run.pk] = {**run_template_context(bare, secrets=secrets, portal=portal), "entity": documents.get(run.pk)}
    return contexts


@transaction.atomic
def agent_runs_claim(*, actor, installation_id, limit=None, visibility_timeout_ms=None, invocation_method=None) -> list:
    """Claim up to `limit` pending agent runs for `installation_id`: [(run, payload)], oldest first. Agents pull
    only WEBHOOK runs here: a claim for another invocation method gets none, once its fields are checked.

    `SELECT ... FOR UPDATE SKIP LOCKED`: two agents claiming at once lock disjoint rows, and a run one of
    them claimed is invisible to the other until its claim expires unacked. The payload is rendered now,
    secrets included (the agent needs them); it is returned, never stored."""
    from actions.backends.webhook import webhook_request_build
    from actions.secrets import secrets_for_templates
    from actions.services.runs import run_finish
    from actions.templating import TemplateError

    agent_check(actor)
    if not isinstance(installation_id, str) or not installation_id.strip() or len(installation_id) > 200:
        raise ValidationFailed("is required and must be a string of at most 200 characters", path="installationId")
    limit = _int_field(limit, "limit", DEFAULT_CLAIM_LIMIT, 1, MAX_CLAIM_LIMIT)
    visibility_ms = _int_field(visibility_timeout_ms, "visibilityTimeoutMs", DEFAULT_VISIBILITY_MS,
                               MIN_VISIBILITY_MS, MAX_VISIBILITY_MS)
    if invocation_method is not None and not isinstance(invocation_method, str):
        raise ValidationFailed("must be a string", path="invocationMethod")
    if invocation_method not in (None, "WEBHOOK"):
        return []
    now = timezone.now()
    runs = list(
        agent_runs()
        .filter(status=RunStatus.IN_PROGRESS, dispatched_at__isnull=False, payload__isnull=False,
                published_to__isnull=True,
                agent_acked_at__isnull=True)
        .filter(Q(agent_claim_expires_at__isnull=True) | Q(agent_claim_expires_at__lte=now))
        .select_for_update(skip_locked=True, of=("self",))
        .select_related("action", "requested_by", "entity__blueprint")
        .order_by("created_at", "id")[:limit]
    )
    if not runs:
        return []
    contexts = _template_contexts(runs, secrets_for_templates())
    claimed = []
    for run in runs:
        try:
            request = webhook_request_build(run, contexts[run.pk])
        except TemplateError as exc:  # e.g. a secret deleted since dispatch: the run cannot be sent
            run_finish(actor=Actor.system(), run=run, status=RunStatus.FAILURE, label=f"Template error in {exc}")
            continue
        claimed.append((run, request.payload()))
    if claimed:
        expires_at = now + timedelta(milliseconds=visibility_ms)
        Run.objects.filter(pk__in=[run.pk for run, _ in claimed]).update(
            agent_installation_id=installation_id, agent_claim_expires_at=expires_at)
        for run, _ in claimed:
            run.agent_installation_id, run.agent_claim_expires_at = installation_id, expires_at
        logger.info("agent %s (%s) claimed runs %s until %s", installation_id, actor.client_id,
                    ", ".join(run.pk for run, _ in claimed), expires_at.isoformat())
    return claimed


def _ack_snapshot(run) -> dict:
    return {"id": run.id, "agentInstallationId": run.agent_installation_id or None,
            "agentAckedAt": run.agent_acked_at.isoformat() if run.agent_acked_at else None}


def _audit_context(run) -> dict:
    return {"runId": run.id, "actionIdentifier": run.action.identifier,
            "blueprintIdentifier": run.blueprint_identifier or None, "entityIdentifier": run.entity_identifier or None}


@transaction.atomic
def agent_runs_ack(*, actor, run_ids) -> int:
    """Ack claimed runs: from now on the acking agent owns them and no agent is handed them again.

    Returns how many were acked. Nothing ackable among `run_ids`: 409 when they were already acked (another
    agent won, or this one asked twice) or are not claimed / no longer in progress; 404 when none is an
    agent run at all."""
    agent_check(actor)
    if (not isinstance(run_ids, list) or not run_ids or len(run_ids) > MAX_CLAIM_LIMIT
            or not all(isinstance(run_id, str) and run_id for run_id in run_ids)):
        raise ValidationFailed(f"must be a list of 1 to {MAX_CLAIM_LIMIT} run ids", path="runIds")
    # Locked in id order, so two acks of overlapping lists cannot deadlock.
    runs = list(agent_runs().filter(pk__in=set(run_ids)).select_for_update(of=("self",))
                .select_related("action").order_by("id"))
    ackable = [run for run in runs if run.status == RunStatus.IN_PROGRESS and run.agent_acked_at is None
               and run.agent_claim_expires_at is not None]
    if not ackable:
        if any(run.agent_acked_at is not None for run in runs):
            raise Conflict(f"{_names(r.id for r in runs if r.agent_acked_at)} already acked.", path="runIds",
                           code="already_acked")
        if runs:
            raise Conflict(f"{_names(r.id for r in runs)} not claimed or no longer in progress.", path="runIds",
                           code="not_claimed")
        raise NotFound(f"no agent run among {_names(run_ids)}.", path="runIds")
    now = timezone.now()
    events = []
    for run in ackable:
        before = _ack_snapshot(run)
        run.agent_acked_at = now
        events.append(audit_event_build(
            actor=actor, verb=RUN_AGENT_ACKED, action=audit_choices.AuditAction.UPDATE, resource_type="run",
            identifier=run.id, blueprint=run.blueprint_identifier, run_id=run.id, before=before,
            after=_ack_snapshot(run), context=_audit_context(run),
            message=f"Acked by execution agent {run.agent_installation_id!r}.",
        ))
    Run.objects.filter(pk__in=[run.pk for run in ackable]).update(agent_acked_at=now, updated_at=now)
    audit_record_many(events)
    return len(ackable)


def _names(run_ids):
    run_ids = list(run_ids)
    text = ", ".join(run_ids[:5]) + (f" and {len(run_ids) - 5} more" if len(run_ids) > 5 else "")
    return f"run {text} was" if len(run_ids) == 1 else f"runs {text} were"


def _audit_response(response):
    size = len(json.dumps(response, default=str))
    if size <= AUDIT_RESPONSE_BYTES:
        return response
    return f"[{size} bytes; stored on the run]"


def _revealed(run) -> tuple:
    """The text the run's request rendered from secrets and credentials (rendered again: the run keeps none of
    it), so that a receiver's echo of a transformed secret is scrubbed from its answer as well."""
    from actions.backends.webhook import webhook_request_build
    from actions.templating import TemplateError, run_template_context

    if run.action.invocation.get("type") != "WEBHOOK":
        return ()
    try:
        return webhook_request_build(run, run_template_context(run)).revealed
    except TemplateError:
        return ()


@transaction.atomic
def agent_run_response_record(*, actor, run, response) -> Run:
    """Store the answer an agent's receiver gave for `run` (the agent reports the status separately)."""
    from actions.services.runs import run_record_response

    agent_check(actor)
    run = (Run.objects.select_for_update(of=("self",)).select_related("action", "requested_by", "entity__blueprint")
           .get(pk=run.pk))
    before = {"id": run.id, "response": _audit_response(run.response)}
    run = run_record_response(run=run, response=response, revealed=_revealed(run))
    audit_record_many([audit_event_build(
        actor=actor, verb=RUN_RESPONSE_RECORDED, action=audit_choices.AuditAction.UPDATE, resource_type="run",
        identifier=run.id, blueprint=run.blueprint_identifier, run_id=run.id, before=before,
        after={"id": run.id, "response": _audit_response(run.response)}, context=_audit_context(run),
    )])
    return run


ORGANIZATION_SETTINGS_UPDATED = "portal.organization.settings_updated"


@transaction.atomic
def organization_settings_update(*, actor, settings) -> dict:
    """Merge `settings` into the organization's (`PATCH /v1/organization`; agents announce their streamer there):
    `portAgentStreamerName` KAFKA makes agent runs go to the runs topic; `changelogDestination` {"type": "KAFKA"}
    (or null) publishes every entity and run change to the change log topic. Other keys are kept as sent."""
    from portal.models import OrganizationSettings
    from portal.strictjson import storable

    if not isinstance(settings, dict):
        raise ValidationFailed("must be an object", path="settings")
    if "portAgentStreamerName" in settings and not isinstance(settings["portAgentStreamerName"], str):
        raise ValidationFailed("must be a string", path="settings.portAgentStreamerName")
    destination = settings.get("changelogDestination")
    if destination is not None and not (isinstance(destination, dict) and isinstance(destination.get("type"), str)):
        raise ValidationFailed("must be an object with a type, or null", path="settings.changelogDestination")
    row = OrganizationSettings.objects.select_for_update().order_by("pk").first() or OrganizationSettings()
    before = dict(row.settings)
    row.settings = storable({**before, **settings})
    if row.pk is not None and row.settings == before:
        return row.settings
    row.save()
    from actions.changelog import changelog_routes_forget

    transaction.on_commit(changelog_routes_forget)
    audit_record_many([audit_event_build(
        actor=actor, verb=ORGANIZATION_SETTINGS_UPDATED, action=audit_choices.AuditAction.UPDATE,
        resource_type="organization", identifier="organization", before=before, after=row.settings)])
    return row.settings
