"""GET /v1/audit-log: Port's audit-log shape over our append-only events."""
from audit.selectors import audit_events_list, audit_filters_parse
from portal.api.base import ApiView, ok
from portal.datetimes import instant_text


def _trigger_by(event):
    """Who: a user (by email), an API credential's user, or the system itself."""
    if event.actor_type == "system" or not event.actor:
        return {"type": "system"}
    if "@" in event.actor:
        return {"type": event.actor_type, "userId": event.actor, "email": event.actor}
    return {"type": event.actor_type, "clientId": event.actor}


def audit_event_json(event):
    diff = event.diff or {}
    return {
        "identifier": event.identifier,
        "action": event.action,
        "resourceType": event.resource_type,
        "context": event.context or {},
        "diff": {"before": diff.get("before"), "after": diff.get("after")},
        "status": event.status,
        "trigger": {"by": _trigger_by(event), "origin": event.origin, "at": instant_text(event.at)},
        "message": event.message,
        "requestId": event.request_id,
    }


class AuditLogView(ApiView):
    repeatable_query = ("resources", "resources[]")
    # user -> the AuditEvent queryset that user may see. Given by the root URLconf (web/urls.py passes
    # catalog.selectors.audit_events.audit_events_visible_to): who may read which blueprint is the catalog's
    # to answer, and the catalog sits above the audit app.
    events_visible_to = None

    def get(self, request):
        filters = audit_filters_parse(request.query_params)
        events, next_cursor = audit_events_list(self.events_visible_to(request.user), filters)
        payload = {"audits": [audit_event_json(event) for event in events]}
        if next_cursor:
            payload["next"] = next_cursor
        return ok(**payload)
