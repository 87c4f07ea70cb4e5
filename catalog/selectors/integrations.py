"""Reads of Ocean integrations and the documents the API answers with (Port's `integration` shape)."""
from catalog.models import Integration
from portal.datetimes import instant_text
from portal.errors import NotFound


def integration_get(identifier):
    integration = Integration.objects.filter(identifier=identifier).first()
    if integration is None:
        raise NotFound(f"Integration {identifier!r} was not found.")
    return integration


def integrations_all():
    return Integration.objects.order_by("identifier")


def integration_resync_state(integration):
    return {
        "status": integration.resync_status or None,
        "lastResyncStart": instant_text(integration.last_resync_start),
        "lastResyncEnd": instant_text(integration.last_resync_end),
        "nextResync": instant_text(integration.next_resync),
        "intervalInMinuets": integration.resync_interval_minutes,
        "updatedAt": instant_text(integration.resync_state_updated_at),
    }


def integration_ingest_urls(integration, api_base):
    """Where Ocean sends its log lines and metrics: `api_base` is the absolute URL of /v1."""
    root = f"{api_base.rstrip('/')}/integration/{integration.identifier}"
    return {"logAttributes": {"ingestUrl": f"{root}/logs"}, "metricAttributes": {"ingestUrl": f"{root}/metrics"}}


def integration_document(integration, *, api_base=None):
    """The integration as the API answers it; with `api_base`, also the ingest URLs (the audit diff omits them)."""
    document = {
        **integration.attributes,
        "installationId": integration.identifier,
        "installationAppType": integration.installation_app_type,
        "version": integration.version,
        "config": integration.config,
        "changelogDestination": integration.changelog_destination,
        "resyncState": integration_resync_state(integration),
        "createdBy": integration.created_by,
        "updatedBy": integration.updated_by,
        "createdAt": instant_text(integration.created_at),
        "updatedAt": instant_text(integration.updated_at),
    }
    if api_base is not None:
        document.update(integration_ingest_urls(integration, api_base))
    return document


def integration_resync_request_document(integration):
    """GET .../resync-request: {updatedAt} of the last "Resync now", or None."""
    if integration.resync_requested_at is None:
        return None
    return {"updatedAt": instant_text(integration.resync_requested_at)}


def integration_recent_resyncs(integration, *, limit):
    return list(integration.resyncs.order_by("-started_at", "-id")[:limit])


def integration_recent_logs(integration, *, limit):
    """The latest `limit` lines, oldest first."""
    return list(reversed(integration.logs.order_by("-id")[:limit]))


def integrations_with_last_resync():
    """[(integration, its latest resync or None)] in two queries (DISTINCT ON for the latest resyncs)."""
    from catalog.models import IntegrationResync

    integrations = list(integrations_all())
    latest = {r.integration_id: r for r in IntegrationResync.objects.filter(integration__in=integrations)
              .order_by("integration_id", "-started_at", "-id").distinct("integration_id")}
    return [(integration, latest.get(integration.pk)) for integration in integrations]
