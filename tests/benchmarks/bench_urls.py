"""The benchmark server's URLconf: every portal URL, plus four bare views, the floors the API is measured against.

- `/bench/bare-lock/<service>/<environment>`: the lock check's single indexed query (`LOCKS_SQL`) behind a plain
  Django view, with no DRF, no authentication, no permission check and no /v1 rate-limit counter; it answers what
  `GET /v1/locks/...` answers (200 unlocked, 423 locked, 404 for an unknown environment), without the lock's details.
- `/bench/bare-entity/<blueprint>/<identifier>`: the GET by identifier's single-row lookup (the entity by its
  blueprint and identifier, the unique index) as one SQL statement, its columns returned as JSON (no relations,
  teams, mirrors or permission rule): the floor of `GET /v1/blueprints/{bp}/entities/{id}` (ratio `get_vs_bare`).
- `POST /bench/bare-search/<case>`: a search shape's hand-written SQL (bench_queries.py, the reference of ratio
  `search_vs_sql`) behind a plain view, its parameters the JSON body, its rows answered as JSON: not a ratio of the
  issue, a second reference printed beside it, so the part of a search's time that any HTTP request through Django
  costs can be told from the part that is the portal's.
- `POST /bench/bare-write`: the floor of a deployment report (ratio `deploy_vs_bare`): the report's JSON body
  stored by one INSERT of one row into `bench_bare_write` (created by bench_deployments.bare_write_table) in one
  transaction, answered 201 — a minimal write with a commit, no validation, entities, audit or events.

Mounted only by bench_settings.py.
"""
import json

from django.db import connection, transaction
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

import bench_queries as queries
from catalog.services.deployments import LOCKS_SQL, lock_params
from web.urls import urlpatterns as portal_urlpatterns

ENTITY_SQL = ("SELECT e.identifier, e.title, e.icon, e.properties::text, e.created_at, e.updated_at"
              " FROM catalog_entity e JOIN catalog_blueprint b ON b.id = e.blueprint_id"
              " WHERE b.identifier = %s AND e.identifier = %s")
BARE_WRITE_TABLE = "bench_bare_write"
BARE_WRITE_SQL = f"INSERT INTO {BARE_WRITE_TABLE} (service, environment, body) VALUES (%s, %s, %s) RETURNING id"


def bare_lock(request, service, environment):
    with connection.cursor() as cursor:
        cursor.execute(LOCKS_SQL, lock_params(service, environment))
        row = cursor.fetchone()
    if row is None:
        return JsonResponse({"ok": False, "error": "not_found", "message": f"environment: {environment!r} is unknown"},
                            status=404)
    if row[0] == "true" or row[4] == "true":  # the environment's, then the running service's `locked`
        return JsonResponse({"ok": False, "error": "locked", "message": "locked"}, status=423)
    return JsonResponse({"ok": True, "locked": False})


def bare_entity(request, blueprint, identifier):
    if "\x00" in blueprint + identifier:
        return JsonResponse({"ok": False, "error": "invalid_request", "message": "identifier: contains a NUL byte"},
                            status=400)
    with connection.cursor() as cursor:
        cursor.execute(ENTITY_SQL, [blueprint, identifier])
        row = cursor.fetchone()
    if row is None:
        return JsonResponse({"ok": False, "error": "not_found", "message": f"identifier: {identifier!r} is unknown"},
                            status=404)
    return JsonResponse({"ok": True, "entity": {"identifier": row[0], "title": row[1], "icon": row[2],
                                                "properties": json.loads(row[3]), "createdAt": row[4], "updatedAt": row[5],
                                                "blueprint": blueprint}})


_CASES = {case.key: case for case in queries.CASES}
_blueprint_ids = {}


@csrf_exempt
def bare_search(request, case):
    if case not in _CASES or request.method != "POST":
        return JsonResponse({"ok": False, "error": "not_found"}, status=404)
    params = json.loads(request.body)
    with connection.cursor() as cursor:
        if not _blueprint_ids:
            cursor.execute("SELECT identifier, id FROM catalog_blueprint")
            _blueprint_ids.update(cursor.fetchall())
        cursor.execute(*_CASES[case].sql(params, _blueprint_ids))
        columns = [column.name for column in cursor.description]
        rows = cursor.fetchall()
    entities = [dict(zip(columns, row)) for row in rows[:queries.PAGE]]
    for entity in entities:
        entity.pop("id", None)
    return JsonResponse({"ok": True, "entities": entities, "next": len(rows) > queries.PAGE})


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


@csrf_exempt
def bare_write(request):
    if request.method != "POST":
        return JsonResponse({"ok": False, "error": "method_not_allowed"}, status=405)
    try:
        body = json.loads(request.body, parse_constant=_refuse_constant)
        payload = json.dumps(body)
    except (ValueError, RecursionError):
        return JsonResponse({"ok": False, "error": "invalid_json", "message": "body: not JSON"}, status=400)
    if not isinstance(body, dict) or "\\u0000" in payload:  # PostgreSQL's jsonb and text refuse NUL
        return JsonResponse({"ok": False, "error": "invalid_json", "message": "body: not an object without NUL"},
                            status=400)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(BARE_WRITE_SQL, [str(body.get("service", "")), str(body.get("environment", "")), payload])
        row_id = cursor.fetchone()[0]
    return JsonResponse({"ok": True, "id": row_id}, status=201)


urlpatterns = [
    path("bench/bare-lock/<str:service>/<str:environment>", bare_lock),
    path("bench/bare-entity/<str:blueprint>/<str:identifier>", bare_entity),
    path("bench/bare-write", bare_write),
    path("bench/bare-search/<str:case>", bare_search),
    *portal_urlpatterns,
]
