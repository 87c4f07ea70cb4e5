"""The catalog's operations in the OpenAPI document (completed by portal/api/openapi.py, which explains the
choice of open and closed bodies). Deployment routes describe themselves with extend_schema
(catalog/api/deployments.py)."""
from catalog.api.datasources import LIMIT_MAX as DATASOURCE_LIMIT_MAX
from catalog.api.deployments import LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX
from catalog.api.entities import BULK_MAX
from catalog.api.initiatives import FAILING_LIMIT_MAX as INITIATIVE_FAILING_MAX
from catalog.api.search import PAGE_LIMIT_MAX, SEARCH_LIMIT_MAX
from catalog.services.backstage import INTERVAL_MAX_MINUTES as BACKSTAGE_INTERVAL_MAX
from catalog.services.entities import ENTITY_KEYS
from portal.api.openapi import closed, envelope, opened, query, query_bool, query_list

OBJECT = {"type": "object"}
NULLABLE_OBJECT = {"type": "object", "nullable": True}
STRING = {"type": "string"}
NULLABLE_STRING = {"type": "string", "nullable": True}
STRINGS = {"type": "array", "items": STRING}
NULLABLE_STRINGS = {**STRINGS, "nullable": True}
OBJECTS = {"type": "array", "items": OBJECT}
NEXT = {"type": "string", "description": "Cursor of the next page: pass it as `from`."}

BLUEPRINT_FIELDS = {
    "identifier": {"type": "string", "minLength": 1, "maxLength": 100},
    "title": {"type": "string", "minLength": 1},
    "icon": NULLABLE_STRING, "description": NULLABLE_STRING,
    "schema": {"type": "object", "nullable": True, "description": "{properties, required}: Port's property definitions."},
    **{key: NULLABLE_OBJECT for key in ("relations", "mirrorProperties", "calculationProperties", "aggregationProperties",
                                        "formulaProperties", "ownership", "changelogDestination")},
}
ENTITY_FIELDS = {key: {} for key in sorted(ENTITY_KEYS)} | {
    "identifier": {**NULLABLE_STRING, "description": "Absent or null: one is generated."},
    "title": NULLABLE_STRING, "icon": NULLABLE_STRING,
    "team": {"description": "A team name or a list of them.", "oneOf": [STRING, STRINGS], "nullable": True},
    "properties": NULLABLE_OBJECT, "relations": NULLABLE_OBJECT,
}
ENTITY_BODY = closed(ENTITY_FIELDS)
TEAM_FIELDS = {"name": {"type": "string", "minLength": 1}, "description": {"type": "string", "nullable": True},
               "users": {"type": "array", "items": {"type": "string", "format": "email"}}}
SCORECARD_FIELDS = {
    "identifier": {"type": "string", "minLength": 1, "maxLength": 100}, "title": STRING, "description": STRING,
    "blueprint": {**STRING, "description": "The blueprint in the path (as GET returns it), or absent."},
    "filter": {**NULLABLE_OBJECT, "description": "{combinator, conditions}: which entities the scorecard applies to."},
    "levels": {"type": "array", "items": OBJECT, "description": "[{title, color}], lowest first."},
    "rules": {"type": "array", "items": OBJECT, "description": "[{identifier, title, level, query {combinator, conditions}}]"},
}
INITIATIVE_FIELDS = {
    "identifier": {"type": "string", "minLength": 1, "maxLength": 100}, "title": {"type": "string", "minLength": 1},
    "description": NULLABLE_STRING, "blueprint": STRING, "scorecard": STRING,
    "level": {**NULLABLE_STRING, "description": "Every covered entity reaches this level of the scorecard."},
    "rules": {**NULLABLE_STRINGS, "description": "Rules of the scorecard every covered entity passes."},
    "filter": {**NULLABLE_OBJECT, "description": "{combinator, conditions}: which of the scorecard's entities it covers."},
    "dueDate": {"type": "string", "format": "date"},
    **{key: {"description": "As GET returns it; ignored."} for key in ("createdAt", "createdBy", "updatedAt",
                                                                       "updatedBy", "progress")},
}
BACKSTAGE_LOCATION_FIELDS = {
    "identifier": {"type": "string", "pattern": "^[A-Za-z0-9@_=-]+$", "minLength": 1, "maxLength": 100},
    "type": {"type": "string", "enum": ["file", "url", "github"]},
    "target": {"type": "string", "minLength": 1, "maxLength": 1000,
               "description": "An absolute path, a URL or a GitHub organization, as `type` says."},
    "catalogPath": {"type": "string", "minLength": 1, "maxLength": 300,
                    "description": "github: the descriptor's path in each repository (default catalog-info.yaml)."},
    "refreshIntervalMinutes": {"type": "integer", "minimum": 1, "maximum": BACKSTAGE_INTERVAL_MAX},
}
BACKSTAGE_ERROR = {"type": "object", "required": ["file", "document", "field", "message"], "properties": {
    "file": STRING, "document": {"type": "integer", "nullable": True, "description": "Index in the file, 0 first."},
    "field": STRING, "message": STRING}}
BACKSTAGE_LOCATION = {"type": "object", "properties": {
    **{key: STRING for key in ("identifier", "type", "target", "catalogPath", "createdAt", "createdBy", "updatedAt",
                               "updatedBy")},
    "refreshIntervalMinutes": {"type": "integer"}, "lastRefreshAt": NULLABLE_STRING,
    "lastRefreshSeconds": {"type": "number", "nullable": True}, "filesRead": {"type": "integer"},
    "entityCount": {"type": "integer"}, "errors": {"type": "array", "items": BACKSTAGE_ERROR}}}
PERMISSIONS_BODY = closed({"entities": {"type": "object", "description": "Grants per verb (read, register, update, "
                                                                         "unregister, updateProperties, updateRelations)."}})

INCLUDE = [query_list("include", "Entity JSON paths to return (e.g. properties.version)."),
           query_list("exclude", "Entity JSON paths to leave out.")]
CALCULATED = query_bool("exclude_calculated_properties", "Leave calculation properties out.")
WRITE_OPTIONS = [query_bool("create_missing_related_entities"), query_bool("validation_only", "Validate, write nothing."),
                 query("run_id", STRING, "The action run this write belongs to (audited with it).")]
CREATE_OPTIONS = [query_bool("upsert"), query_bool("merge", "With upsert: merge into the existing entity.")]
DEPENDENTS = query_bool("delete_dependents", "Also delete the entities that depend on these.")

ENTITY_DETAIL = {
    "GET": {"parameters": [*INCLUDE, CALCULATED], "responses": {200: envelope(entity=OBJECT)}},
    "PUT": {"body": ENTITY_BODY, "parameters": [*WRITE_OPTIONS, *INCLUDE], "responses": {200: envelope(entity=OBJECT)}},
    "PATCH": {"body": ENTITY_BODY, "parameters": [*WRITE_OPTIONS, *INCLUDE], "responses": {200: envelope(entity=OBJECT)}},
    "DELETE": {"parameters": [DEPENDENTS, query("run_id", STRING)],
               "responses": {200: envelope(optional={"deletedDependents": STRINGS})}},
}

OPERATIONS = {
    "GET /v1/blueprints": {"responses": {200: envelope(blueprints=OBJECTS)}},
    "POST /v1/blueprints": {"body": opened(BLUEPRINT_FIELDS, required=["identifier", "title", "schema"]),
                            "responses": {201: envelope(blueprint=OBJECT)}},
    "GET /v1/blueprints/{identifier}": {"responses": {200: envelope(blueprint=OBJECT)}},
    "PUT /v1/blueprints/{identifier}": {"body": opened(BLUEPRINT_FIELDS, required=["title", "schema"]),
                                        "responses": {200: envelope(blueprint=OBJECT)}},
    "PATCH /v1/blueprints/{identifier}": {"body": opened(BLUEPRINT_FIELDS), "responses": {200: envelope(blueprint=OBJECT)}},
    "DELETE /v1/blueprints/{identifier}": {
        "parameters": [query_bool("delete_entities", "Delete its entities too."), query_bool("delete_dependents", "Same as delete_entities.")],
        "responses": {200: envelope()}},
    "GET /v1/blueprints/{identifier}/entities-count": {"responses": {200: envelope(count={"type": "integer", "minimum": 0})}},
    "GET /v1/blueprints/{identifier}/permissions": {"responses": {200: envelope(permissions=OBJECT)}},
    "PATCH /v1/blueprints/{identifier}/permissions": {"body": PERMISSIONS_BODY, "responses": {200: envelope(permissions=OBJECT)}},
    "GET /v1/blueprints/{blueprint}/entities": {
        "parameters": [*INCLUDE, CALCULATED, query("limit", {"type": "integer", "minimum": 1, "maximum": 10000}),
                       query("from", NEXT)],
        "responses": {200: envelope(optional={"next": NEXT}, entities=OBJECTS)}},
    "POST /v1/blueprints/{blueprint}/entities": {
        "body": ENTITY_BODY, "parameters": [*CREATE_OPTIONS, *WRITE_OPTIONS, *INCLUDE],
        "responses": {200: envelope(entity=OBJECT), 201: envelope(entity=OBJECT)}},
    "POST /v1/blueprints/{blueprint}/entities/bulk": {
        "body": closed({"entities": {"type": "array", "items": {}, "minItems": 1, "maxItems": BULK_MAX,
                                     "description": "Entities as POST .../entities takes them; each is checked on its "
                                                    "own and a refused one is reported in a 207's `errors`."}},
                       required=["entities"]),
        "parameters": [*CREATE_OPTIONS, *WRITE_OPTIONS],
        "responses": {200: envelope(entities=OBJECTS, errors=OBJECTS), 207: envelope(entities=OBJECTS, errors=OBJECTS)}},
    "POST /v1/blueprints/{blueprint}/bulk/entities/delete": {
        "body": closed({"entities": {"type": "array", "items": STRING, "minItems": 1, "maxItems": 100}}, required=["entities"]),
        "parameters": [DEPENDENTS], "responses": {200: envelope(deletedEntities=STRINGS)}},
    "POST /v1/blueprints/{blueprint}/entities/search": {
        "body": closed({"query": {"type": "object", "nullable": True, "description": "A rule set; absent: every entity."},
                        "include": NULLABLE_STRINGS, "exclude": NULLABLE_STRINGS,
                        "limit": {"type": "integer", "minimum": 1, "maximum": PAGE_LIMIT_MAX},
                        "from": {**NEXT, "nullable": True}}),
        "responses": {200: envelope(entities=OBJECTS, next={**NEXT, "nullable": True})}},
    "POST /v1/entities/search": {
        "body": opened({"combinator": {"type": "string", "enum": ["and", "or"]}, "rules": OBJECTS},
                       required=["combinator", "rules"]),
        "parameters": [*INCLUDE, CALCULATED, query("limit", {"type": "integer", "minimum": 1, "maximum": SEARCH_LIMIT_MAX})],
        "responses": {200: envelope(matchingBlueprints=STRINGS, entities=OBJECTS)}},
    **{f"{method} /v1/blueprints/{{blueprint}}/entities/{{identifier}}": spec for method, spec in ENTITY_DETAIL.items()},
    # the entity whose identifier is "search" (catalog/api/search.py)
    **{f"{method} /v1/blueprints/{{blueprint}}/entities/search": spec for method, spec in ENTITY_DETAIL.items()},
    "GET /v1/deployments": {"parameters": [query("limit", {"type": "integer", "minimum": 1, "maximum": LIST_LIMIT_MAX},
                                                 f"Default {LIST_LIMIT_DEFAULT}.")]},
    "POST /v1/blueprints/entities/datasource-entities": {
        "body": closed({"datasource_prefix": {"type": "string", "minLength": 1},
                        "datasource_suffix": {"type": "string", "minLength": 1},
                        "limit": {"type": "integer", "minimum": 1, "maximum": DATASOURCE_LIMIT_MAX},
                        "before": {"type": "string", "nullable": True, "description": "An ISO date-time."},
                        "from": {**NEXT, "nullable": True}}, required=["datasource_prefix", "datasource_suffix"]),
        "responses": {200: envelope(entities=OBJECTS, next={**NEXT, "nullable": True})}},
    "GET /v1/scorecards": {"responses": {200: envelope(scorecards=OBJECTS)}},
    "GET /v1/blueprints/{blueprint}/scorecards": {"responses": {200: envelope(scorecards=OBJECTS)}},
    "POST /v1/blueprints/{blueprint}/scorecards": {"body": closed(SCORECARD_FIELDS, required=["identifier", "rules"]),
                                                   "responses": {201: envelope(scorecard=OBJECT)}},
    "PUT /v1/blueprints/{blueprint}/scorecards": {"body": {"type": "array", "items": OBJECT},
                                                  "responses": {200: envelope(scorecards=OBJECTS)}},
    "GET /v1/blueprints/{blueprint}/scorecards/{identifier}": {"responses": {200: envelope(scorecard=OBJECT)}},
    "PUT /v1/blueprints/{blueprint}/scorecards/{identifier}": {"body": closed(SCORECARD_FIELDS, required=["rules"]),
                                                               "responses": {200: envelope(scorecard=OBJECT)}},
    "DELETE /v1/blueprints/{blueprint}/scorecards/{identifier}": {"responses": {200: envelope()}},
    "GET /v1/initiatives": {"responses": {200: envelope(initiatives=OBJECTS)}},
    "POST /v1/initiatives": {"body": closed(INITIATIVE_FIELDS, required=["identifier", "title", "blueprint", "scorecard",
                                                                         "dueDate"]),
                             "responses": {201: envelope(initiative=OBJECT)}},
    "GET /v1/initiatives/{identifier}": {
        "parameters": [query("team", STRING, "Only the entities failing it that this team owns (empty: no team)."),
                       query("limit", {"type": "integer", "minimum": 1, "maximum": INITIATIVE_FAILING_MAX},
                             "How many failing entities to list (default 100).")],
        "responses": {200: envelope(initiative=OBJECT, failing=OBJECTS, failingTotal={"type": "integer"})}},
    "PUT /v1/initiatives/{identifier}": {"body": closed(INITIATIVE_FIELDS, required=["title", "blueprint", "scorecard",
                                                                                     "dueDate"]),
                                         "responses": {200: envelope(initiative=OBJECT)}},
    "DELETE /v1/initiatives/{identifier}": {"responses": {200: envelope()}},
    "GET /v1/backstage/locations": {"responses": {200: envelope(locations=OBJECTS)}},
    "POST /v1/backstage/locations": {"body": closed(BACKSTAGE_LOCATION_FIELDS, required=["identifier", "type", "target"]),
                                     "responses": {201: envelope(location=BACKSTAGE_LOCATION)}},
    "GET /v1/backstage/locations/{identifier}": {"responses": {200: envelope(location=BACKSTAGE_LOCATION)}},
    "DELETE /v1/backstage/locations/{identifier}": {"responses": {200: envelope()}},
    "POST /v1/backstage/locations/{identifier}/refresh": {
        "parameters": [query_bool("install_blueprints", "Install the Backstage blueprints first (those missing).")],
        "responses": {200: envelope(location=BACKSTAGE_LOCATION)}},
    "GET /v1/teams": {"responses": {200: envelope(teams=OBJECTS)}},
    "POST /v1/teams": {"body": closed(TEAM_FIELDS, required=["name"]), "responses": {201: envelope(team=OBJECT)}},
    "GET /v1/teams/{name}": {"responses": {200: envelope(team=OBJECT)}},
    "PUT /v1/teams/{name}": {"body": closed(TEAM_FIELDS), "responses": {200: envelope(team=OBJECT)}},
    "PATCH /v1/teams/{name}": {"body": closed(TEAM_FIELDS), "responses": {200: envelope(team=OBJECT)}},
    "DELETE /v1/teams/{name}": {"responses": {200: envelope()}},
    "GET /v1/users": {"responses": {200: envelope(users=OBJECTS)}},
    "GET /v1/users/{email}": {"responses": {200: envelope(user=OBJECT)}},
    "PATCH /v1/users/{email}": {
        "body": closed({"roles": {"type": "array", "items": {"oneOf": [STRING, OBJECT]}},
                        "teams": {"type": "array", "items": {"oneOf": [STRING, OBJECT]}}}),
        "responses": {200: envelope(user=OBJECT)}},
}
