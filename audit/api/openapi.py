"""The audit app's operation in the OpenAPI document (completed by portal/api/openapi.py)."""
from audit.choices import AuditAction, AuditStatus
from audit.selectors import MAX_LIMIT, PORT_RESOURCES
from portal.actor import AuditOrigin
from portal.api.openapi import envelope, query, query_list

STRING = {"type": "string"}
INSTANT = {"type": "string", "description": "An ISO date-time (no offset = UTC) or a date."}


def _enum(choices):
    return {"type": "string", "enum": list(choices.values)}


OPERATIONS = {
    "GET /v1/audit-log": {
        "parameters": [
            query("identifier", STRING), query("entity", STRING), query("blueprint", STRING), query("run_id", STRING),
            query_list("resources", f"Resource types ({', '.join(PORT_RESOURCES)}), repeated or comma-separated."),
            query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
            query("next", STRING, "The cursor of the previous page."),
            query("action", _enum(AuditAction)), query("status", _enum(AuditStatus)), query("origin", _enum(AuditOrigin)),
            query("from", INSTANT), query("to", INSTANT),
        ],
        "responses": {200: envelope(optional={"next": STRING}, audits={"type": "array", "items": {"type": "object"}})},
    },
}
