"""The actions app's operations in the OpenAPI document (completed by portal/api/openapi.py, which explains the
choice of open and closed bodies)."""
from actions.api.runs import MAX_LIMIT
from actions.choices import Operation, TriggerType
from actions.definitions import TOP_KEYS
from actions.services.actions import VERBS
from actions.services.agent import MAX_CLAIM_LIMIT, MAX_VISIBILITY_MS, MIN_VISIBILITY_MS
from portal.api.openapi import closed, envelope, opened, query, query_bool

OBJECT = {"type": "object"}
STRING = {"type": "string"}
OBJECTS = {"type": "array", "items": OBJECT}
NULLABLE_STRING = {"type": "string", "nullable": True}
LIMIT = query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT})
OUTCOME = {"type": "string", "enum": ["SUCCESS", "FAILURE"]}

ACTION_BODY = closed({key: {} for key in sorted(TOP_KEYS)} | {
    "identifier": {"type": "string", "minLength": 1}, "title": {"type": "string", "minLength": 1},
    "icon": NULLABLE_STRING, "description": NULLABLE_STRING, "trigger": OBJECT, "invocationMethod": OBJECT,
}, required=["identifier", "title", "trigger", "invocationMethod"])
ACTION_PERMISSIONS_BODY = closed({verb: OBJECT for verb in sorted(VERBS)})

OPERATIONS = {
    "GET /v1/actions": {
        "parameters": [query("blueprint_identifier", STRING),
                       query("operation", {"type": "string", "enum": list(Operation.values)}),
                       query("trigger_type", {"type": "string", "enum": list(TriggerType.values)})],
        "responses": {200: envelope(actions=OBJECTS)}},
    "POST /v1/actions": {"body": ACTION_BODY, "responses": {201: envelope(action=OBJECT)}},
    "GET /v1/actions/{identifier}": {"responses": {200: envelope(action=OBJECT)}},
    "PUT /v1/actions/{identifier}": {"body": ACTION_BODY, "responses": {200: envelope(action=OBJECT)}},
    "DELETE /v1/actions/{identifier}": {"responses": {200: envelope()}},
    "GET /v1/actions/{identifier}/permissions": {"responses": {200: envelope(permissions=OBJECT)}},
    "PATCH /v1/actions/{identifier}/permissions": {"body": ACTION_PERMISSIONS_BODY,
                                                   "responses": {200: envelope(permissions=OBJECT)}},
    "POST /v1/actions/{identifier}/runs": {
        "body": closed({"properties": OBJECT, "entity": {"type": "string", "nullable": True}}),
        "parameters": [query("run_as", STRING, "Admins: the email of the user to run as.")],
        "responses": {202: envelope(run=OBJECT)}},
    "GET /v1/actions/runs": {
        "parameters": [query("entity", STRING), query("blueprint", STRING), query("user_email", STRING),
                       query("external_run_id", STRING), query("action", STRING),
                       query_bool("active", "true: runs not yet finished; false: finished runs."), LIMIT],
        "responses": {200: envelope(runs=OBJECTS)}},
    "GET /v1/actions/runs/{run_id}": {"responses": {200: envelope(run=OBJECT)}},
    "PATCH /v1/actions/runs/{run_id}": {
        "body": closed({"status": {**OUTCOME, "nullable": True, "enum": [*OUTCOME["enum"], None]}, "statusLabel": NULLABLE_STRING, "link": {"oneOf": [STRING, {"type": "array", "items": STRING}], "nullable": True},
                        "summary": NULLABLE_STRING, "externalRunId": NULLABLE_STRING}),
        "responses": {200: envelope(run=OBJECT)}},
    "GET /v1/actions/runs/{run_id}/logs": {"responses": {200: envelope(runLogs=OBJECTS)}},
    "POST /v1/actions/runs/{run_id}/logs": {
        "body": opened({"message": {"type": "string", "minLength": 1},
                        "terminationStatus": {"type": "string", "enum": ["SUCCESS", "FAILURE", "", None], "nullable": True},
                        "statusLabel": NULLABLE_STRING}, required=["message"]),
        "responses": {201: envelope(runLog=OBJECT)}},
    "PATCH /v1/actions/runs/{run_id}/approval": {
        "body": opened({"status": {"type": "string", "enum": ["APPROVE", "DECLINE"]}, "description": NULLABLE_STRING},
                       required=["status"]),
        "responses": {200: envelope(run=OBJECT)}},
    "GET /v1/actions/runs/{run_id}/approvers": {"responses": {200: envelope(approvers=OBJECTS)}},
    "GET /v1/approvals": {"parameters": [LIMIT], "responses": {200: envelope(runs=OBJECTS)}},
    # the execution agent's routes (actions/api/agent.py)
    "POST /v1/actions/runs/claim-pending": {
        "body": opened({"installationId": {"type": "string", "maxLength": 200, "pattern": r"\S"},
                        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_CLAIM_LIMIT, "nullable": True},
                        "visibilityTimeoutMs": {"type": "integer", "minimum": MIN_VISIBILITY_MS,
                                                "maximum": MAX_VISIBILITY_MS, "nullable": True},
                        "invocationMethod": {**NULLABLE_STRING, "description": "Only WEBHOOK runs are handed out."}},
                       required=["installationId"]),
        "responses": {200: envelope(runs=OBJECTS)}},
    "PATCH /v1/actions/runs/ack": {
        "body": opened({"runIds": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1,
                                   "maxItems": MAX_CLAIM_LIMIT}},
                       required=["runIds"]),
        "responses": {200: envelope(ackedCount={"type": "integer", "minimum": 0})}},
    "PATCH /v1/actions/runs/{run_id}/response": {"body": opened({"response": {}}, required=["response"]),
                                                  "responses": {200: envelope(run=OBJECT)}},
    "POST /v1/workflows/runs/claim-pending": {"body": opened({}), "responses": {200: envelope(nodeRuns=OBJECTS)}},
    "PATCH /v1/organization": {
        "body": opened({"settings": opened({
            "portAgentStreamerName": {**STRING, "description": "KAFKA: agent runs are published to the runs topic"},
            "changelogDestination": {**opened({"type": STRING}, required=["type"]), "nullable": True,
                                     "description": '{"type": "KAFKA"}: every change goes to the change log topic'}})}),
        "responses": {200: envelope(organization=OBJECT)}},
    "POST /v1/blueprints/{blueprint}/entities/{identifier}/ttl/extend": {
        "responses": {200: envelope(entity=OBJECT, ttl=OBJECT)}},
}
