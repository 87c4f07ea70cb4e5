"""Ocean integrations: register, update, set the mapping config, record resync states, ask for a resync, and
keep what an integration reports (log lines, per-kind metrics, kind examples).

Configuration and resync changes are audited; what an integration reports while it runs (logs, metrics,
examples) is telemetry, kept bounded and not audited, as run log lines are not changes of the catalog."""
from django.db import transaction
from django.utils import timezone

from audit import choices as audit_choices
from audit.services import audit_record
from catalog import choices
from catalog.integration_config import integration_config_clean
from catalog.models import Blueprint, Integration, IntegrationKindExample, IntegrationLog, IntegrationResync
from catalog.selectors.integrations import integration_document
from portal.datetimes import instant_field
from portal.errors import Conflict, ValidationFailed

IDENTIFIER_MAX = 200
FIELDS = {"installationAppType": "installation_app_type", "version": "version",
          "changelogDestination": "changelog_destination"}
# What Ocean sends that is neither a column nor ours to interpret; kept and returned as sent.
ATTRIBUTES = ("actionsProcessingEnabled", "incrementalSyncEnabled", "createPortResourcesOrigin",
              "arePortResourcesInitialized", "processingMode", "oauthBrokerUrl", "spec", "installationType")
WRITABLE = {"installationId", "config", *FIELDS, *ATTRIBUTES}


def _known_blueprints():
    return set(Blueprint.objects.values_list("identifier", flat=True))


def _clean(data, *, creating, check_blueprints):
    if not isinstance(data, dict):
        raise ValidationFailed("must be a JSON object", path="body")
    unknown = sorted(set(data) - WRITABLE)
    if unknown:
        raise ValidationFailed("is not an integration field", path=unknown[0])
    if creating:
        identifier = data.get("installationId")
        if not isinstance(identifier, str) or not identifier.strip() or len(identifier) > IDENTIFIER_MAX:
            raise ValidationFailed(f"is required, a string of at most {IDENTIFIER_MAX} characters", path="installationId")
        if identifier != identifier.strip() or not identifier.isprintable() or "/" in identifier:
            raise ValidationFailed(f"{identifier!r} holds spaces at its ends, a '/' or control characters",
                                   path="installationId")
    for key in ("installationAppType", "version"):
        if key in data and not isinstance(data[key], str):
            raise ValidationFailed("must be a string", path=key)
    if "changelogDestination" in data and not isinstance(data["changelogDestination"], (dict, type(None))):
        raise ValidationFailed("must be an object or null", path="changelogDestination")
    if "config" in data:
        integration_config_clean(data["config"], known_blueprints=_known_blueprints() if check_blueprints else None)
    return data


def _apply(integration, data):
    for key, field in FIELDS.items():
        if key in data:
            setattr(integration, field, data[key])
    if "config" in data:
        integration.config = data["config"]
    integration.attributes = {**integration.attributes, **{key: data[key] for key in ATTRIBUTES if key in data}}


@transaction.atomic
def integration_create(*, actor, data, check_blueprints=True):
    """POST /v1/integration. `check_blueprints`: refuse a mapping to an unknown blueprint (off for Ocean itself,
    which sends its default mapping before it creates the blueprints that mapping names)."""
    data = _clean(data, creating=True, check_blueprints=check_blueprints)
    if Integration.objects.filter(identifier=data["installationId"]).exists():
        raise Conflict(f"Integration {data['installationId']!r} already exists.")
    integration = Integration(identifier=data["installationId"], created_by=actor.label, updated_by=actor.label)
    _apply(integration, data)
    integration.save()
    audit_record(actor=actor, verb=audit_choices.INTEGRATION_CREATED, action=audit_choices.AuditAction.CREATE,
                 resource_type="integration", identifier=integration.identifier,
                 after=integration_document(integration))
    return integration


def _locked(integration):
    return Integration.objects.select_for_update().get(pk=integration.pk)


@transaction.atomic
def integration_update(*, actor, integration, data, check_blueprints=True):
    """PATCH /v1/integration/{id} (and /config, with only `config`)."""
    integration = _locked(integration)
    data = _clean(data, creating=False, check_blueprints=check_blueprints)
    if "installationId" in data and data["installationId"] != integration.identifier:
        raise ValidationFailed("an integration's identifier cannot change", path="installationId")
    before = integration_document(integration)
    _apply(integration, data)
    integration.updated_by = actor.label
    integration.save()
    after = integration_document(integration)
    if after != before:
        verb = audit_choices.INTEGRATION_CONFIG_UPDATED if set(data) == {"config"} else audit_choices.INTEGRATION_UPDATED
        audit_record(actor=actor, verb=verb, action=audit_choices.AuditAction.UPDATE, resource_type="integration",
                     identifier=integration.identifier, before=before, after=after)
    return integration


def _resync_state_clean(data):
    if not isinstance(data, dict):
        raise ValidationFailed("must be a JSON object", path="body")
    status = data.get("status")
    if status not in choices.ResyncStatus.values:
        raise ValidationFailed(f"must be one of {', '.join(choices.ResyncStatus.values)}, got {status!r}", path="status")
    moments = {key: instant_field(data[key], key) if data.get(key) is not None else None
               for key in ("lastResyncStart", "lastResyncEnd", "nextResync") if key in data}
    interval = data.get("intervalInMinuets", data.get("intervalInMinutes"))  # Ocean spells it "Minuets"
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int) or not 0 <= interval <= 10**6):
        raise ValidationFailed("must be a whole number of minutes", path="intervalInMinuets")
    return status, moments, interval


@transaction.atomic
def integration_resync_state_update(*, actor, integration, data):
    """PATCH /v1/integration/{id}/resync-state {status, lastResyncStart, lastResyncEnd, nextResync}: `running`
    opens a resync in the history, a final status closes the open one."""
    integration = _locked(integration)
    status, moments, interval = _resync_state_clean(data)
    now = timezone.now()
    before = {"status": integration.resync_status or None}
    integration.resync_status = status
    for key, field in (("lastResyncStart", "last_resync_start"), ("lastResyncEnd", "last_resync_end"),
                       ("nextResync", "next_resync")):
        if key in moments:
            setattr(integration, field, moments[key])
    if interval is not None:
        integration.resync_interval_minutes = interval
    integration.resync_state_updated_at = now
    integration.save()
    open_resync = integration.resyncs.filter(ended_at__isnull=True).order_by("-started_at", "-id").first()
    if status == choices.ResyncStatus.RUNNING:
        if open_resync is not None:  # a resync that never reported its end was superseded
            open_resync.status, open_resync.ended_at = choices.ResyncStatus.ABORTED, now
            open_resync.save(update_fields=["status", "ended_at"])
        IntegrationResync.objects.create(integration=integration, status=status,
                                         started_at=integration.last_resync_start or now)
    elif open_resync is not None:
        open_resync.status, open_resync.ended_at = status, integration.last_resync_end or now
        open_resync.save(update_fields=["status", "ended_at"])
    audit_record(actor=actor, verb=audit_choices.INTEGRATION_RESYNC_STATE_UPDATED,
                 action=audit_choices.AuditAction.UPDATE, resource_type="integration",
                 identifier=integration.identifier, before=before, after={"status": status})
    return integration


@transaction.atomic
def integration_resync_request(*, actor, integration):
    """"Resync now": a POLLING integration sees the request through GET .../resync-request and resyncs."""
    integration = _locked(integration)
    integration.resync_requested_at = timezone.now()
    integration.save(update_fields=["resync_requested_at", "updated_at"])
    audit_record(actor=actor, verb=audit_choices.INTEGRATION_RESYNC_REQUESTED, action=audit_choices.AuditAction.UPDATE,
                 resource_type="integration", identifier=integration.identifier,
                 after={"resyncRequestedAt": integration.resync_requested_at.isoformat()})
    return integration


def _log_line(integration, line, index):
    if not isinstance(line, dict) or not isinstance(line.get("message"), str):
        raise ValidationFailed("is required, a string", path=f"logs[{index}].message")
    at = instant_field(line["timestamp"], f"logs[{index}].timestamp") if line.get("timestamp") else timezone.now()
    level = line.get("level") if isinstance(line.get("level"), str) else ""
    extra = line.get("extra") if isinstance(line.get("extra"), dict) else {}
    return IntegrationLog(integration=integration, at=at, level=level[:16], message=line["message"], extra=extra)


@transaction.atomic
def integration_logs_ingest(*, integration, data):
    """POST <logAttributes.ingestUrl> {logs: [{message, level, timestamp, extra}]}; keeps the latest lines."""
    if not isinstance(data, dict) or not isinstance(data.get("logs"), list):
        raise ValidationFailed("is required, an array", path="logs")
    IntegrationLog.objects.bulk_create([_log_line(integration, line, i) for i, line in enumerate(data["logs"])])
    keep_from = (IntegrationLog.objects.filter(integration=integration).order_by("-id")
                 .values_list("id", flat=True)[choices.INTEGRATION_LOG_LINES_KEPT:choices.INTEGRATION_LOG_LINES_KEPT + 1])
    if keep_from:
        IntegrationLog.objects.filter(integration=integration, id__lte=keep_from[0]).delete()


@transaction.atomic
def integration_kind_metrics_record(*, integration, event_id, kind, metrics):
    """PUT <metricAttributes.ingestUrl>/syncMetrics/resync/{eventId}/kind/{kind}: the counts of one kind, kept
    on the integration's latest resync."""
    if not isinstance(metrics, dict):
        raise ValidationFailed("is required, an object", path="syncKindMetrics")
    resync = (IntegrationResync.objects.select_for_update().filter(integration=integration)
              .order_by("-started_at", "-id").first())
    if resync is None:
        return None
    resync.metrics = {**resync.metrics, kind: {"eventId": event_id, **metrics}}
    resync.save(update_fields=["metrics"])
    return resync


@transaction.atomic
def integration_kind_examples_record(*, integration, kind, data):
    """POST /v1/integration/{id}/kinds/{kind}/examples {examples: [raw objects]}: the latest few are kept."""
    if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
        raise ValidationFailed("is required, an array", path="examples")
    IntegrationKindExample.objects.update_or_create(
        integration=integration, kind=kind,
        defaults={"examples": data["examples"][:choices.INTEGRATION_KIND_EXAMPLES_KEPT]})
