"""The OpenAPI document (GET /v1/openapi.json) says what the API does.

drf-spectacular walks the routes; `operations_complete` (called by the postprocessing hook in web/openapi.py,
which gathers every app's operations) then gives every operation what our views, which take and return plain
JSON envelopes rather than serializers, cannot tell it: the request body, the query parameters and the success
answer, from each app's own `openapi.py` (`OPERATIONS`, keyed "METHOD /v1/path"), and the error answers every
/v1 route can give:

- 400 `invalid_json` (a body that is not JSON) or `bad_request`; 401 no or a bad token; 403 not allowed;
  404 not found; 406 an `Accept` that names no JSON; 413 a body over 1 MiB and 415 a body that is not
  `application/json` (routes that read a body); 409 on writes (it exists already, a state that forbids it);
  422 `invalid_request` naming the field or parameter; 429 with `Retry-After`; 503 `unavailable` with
  `Retry-After` while the database is down. Every answer but 413 carries the `x-ratelimit-*` headers.

Unknown keys in a body. A route that refuses them is documented `additionalProperties: false`; a route that
ignores them is left open. Closed: entity writes, team and user writes, run requests and run updates,
deployment reports, the blueprint-scoped search page, bulk entity writes and deletes, action definitions
(`createdBy`/`updatedBy`/`createdAt`/`updatedAt` that GET returns are accepted back and ignored) and both
permission documents. Open, for Port's v1 clients: a blueprint definition (Port's CLI and Terraform send back
what GET returned, with keys of theirs the portal does not keep), the execution agent's bodies (claims, acks,
responses, logs, approvals, the organization: Port's agent adds keys as it evolves), the rule set of
POST /v1/entities/search and the access-token request (Port's clients send extra keys).
"""
ERROR_NAME = "Error"
ERROR = {"$ref": f"#/components/schemas/{ERROR_NAME}"}
ERROR_SCHEMA = {
    "type": "object", "required": ["ok", "error", "message"],
    "properties": {
        "ok": {"type": "boolean", "enum": [False]},
        "error": {"type": "string", "description": "A code: invalid_json, unauthorized, forbidden, not_found, "
                                                   "conflict, invalid_request, too_many_requests, unavailable …"},
        "message": {"type": "string", "description": "Starts with the field or parameter at fault, e.g. `limit: …`."},
    },
}
BODY_METHODS = {"post", "put", "patch"}
WRITE_METHODS = BODY_METHODS | {"delete"}
COUNT = {"type": "integer", "minimum": 0}
RATE_LIMIT_HEADERS = {
    "x-ratelimit-limit": {"description": "Requests allowed per window.", "required": True, "schema": COUNT},
    "x-ratelimit-remaining": {"description": "Requests left in this window.", "required": True, "schema": COUNT},
    "x-ratelimit-reset": {"description": "Seconds until the window ends.", "required": True, "schema": COUNT},
    "x-ratelimit-period": {"description": "The window, in seconds.", "required": True, "schema": COUNT},
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.", "required": True, "schema": COUNT}}
# A 429 of the rate limiter and of an action's time-window quota say when to come back; one of the
# live-entities quota cannot (it frees up when an entity is deleted), so on a 429 the header may be missing.
RETRY_AFTER_WHEN_KNOWN = {"Retry-After": {**RETRY_AFTER["Retry-After"], "required": False}}

ERRORS = {
    "400": "`invalid_json`: the body is not JSON (NaN and Infinity are not JSON); `bad_request`: a malformed request.",
    "401": "`unauthorized`: no bearer token, or a token that is invalid or expired.",
    "403": "`forbidden`: the caller may not do this.",
    "404": "`not_found`: the path names nothing the caller may read; the message names it.",
    "406": "`not_acceptable`: the Accept header names no JSON type.",
    "409": "`conflict`: it exists already, or its state forbids the change; the message says which.",
    "413": "`payload_too_large`: the body is over 1 MiB.",
    "415": "`unsupported_media_type`: the body is not application/json.",
    "422": "`invalid_request`: a field or query parameter is invalid; the message starts with its name.",
    "429": "`too_many_requests`: the caller's rate limit is used up; `quota_exceeded`: the action's run quota.",
    "503": "`unavailable`: the portal cannot reach its database; `busy`: a write lost to concurrent writers; retry after Retry-After seconds.",
}


def envelope(optional=None, **properties):
    """A success answer: {ok: true, ...properties, ...optional}; `properties` are always there."""
    return {"type": "object", "required": ["ok", *properties],
            "properties": {"ok": {"type": "boolean", "enum": [True]}, **properties, **(optional or {})}}


def query(name, schema, description=""):
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def query_list(name, description=""):
    """A repeated query parameter (`?include=a&include=b`)."""
    return {"name": name, "in": "query", "required": False, "style": "form", "explode": True,
            "schema": {"type": "array", "items": {"type": "string"}}, "description": description}


def query_bool(name, description=""):
    return query(name, {"type": "boolean"}, description)


def closed(properties, required=()):
    """A body object that refuses keys it does not name."""
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def opened(properties, required=()):
    """A body object that ignores keys it does not name."""
    return {"type": "object", "properties": properties, "required": list(required)}


def _json(schema):
    return {"application/json": {"schema": schema}}


def _apply(operation, spec):
    if "body" in spec:
        operation["requestBody"] = {"content": _json(spec["body"])}
    elif spec and "requestBody" in operation:
        del operation["requestBody"]  # a route that reads no body
    if "requestBody" in operation:
        # A missing body reads as {}: it is required where {} lacks a required field or a list is expected, and
        # optional elsewhere.
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        operation["requestBody"]["required"] = bool(body.get("required")) or body.get("type") == "array"
    if spec.get("parameters"):
        given = {(p["in"], p["name"]) for p in spec["parameters"]}
        operation["parameters"] = [*(p for p in operation.get("parameters", []) if (p["in"], p["name"]) not in given),
                                   *spec["parameters"]]
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "query" and parameter["schema"].get("type") != "array":  # an empty item is a string
            parameter["allowEmptyValue"] = True  # `?limit=` is as if the parameter were absent (`false` for a boolean)
    if "responses" in spec:
        success = {str(code): {"description": "OK", "content": _json(schema)} for code, schema in spec["responses"].items()}
        operation["responses"] = {**{code: answer for code, answer in operation["responses"].items()
                                     if not code.startswith("2")}, **success}
    if spec.get("public"):
        operation["security"] = [{}]


def _errors_for(method, spec):
    codes = ["400", "401", "403", "404", "406", "422", "429", "503"]
    if method in BODY_METHODS:
        codes += ["413", "415"]
    if method in WRITE_METHODS:
        codes.append("409")
    if spec.get("public"):
        codes.remove("403")
    return codes


def operations_complete(result, specs):
    """Completes drf-spectacular's document `result` from `specs` (every app's OPERATIONS): see the module
    docstring."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_NAME] = ERROR_SCHEMA
    for path, methods in result["paths"].items():
        for method, operation in methods.items():
            spec = specs.get(f"{method.upper()} {path}", {})
            _apply(operation, spec)
            responses = operation["responses"]
            for code in _errors_for(method, spec):
                answer = responses.setdefault(code, {"content": _json(ERROR)})
                answer["description"] = answer.get("description") or ERRORS[code]
            for code, answer in responses.items():
                headers = {} if code == "413" else dict(RATE_LIMIT_HEADERS)
                if code in ("429", "503"):
                    headers.update(RETRY_AFTER if code == "503" else RETRY_AFTER_WHEN_KNOWN)
                answer["headers"] = {**headers, **answer.get("headers", {})}
    return result


OPERATIONS = {
    "POST /v1/auth/access_token": {
        "public": True,
        "body": opened({"clientId": {"type": "string", "minLength": 1}, "clientSecret": {"type": "string", "minLength": 1}},
                       required=["clientId", "clientSecret"]),
        "responses": {200: envelope(accessToken={"type": "string"}, expiresIn={"type": "integer"},
                                    tokenType={"type": "string", "enum": ["Bearer"]})},
    },
}
