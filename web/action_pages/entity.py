"""`/catalog/<blueprint>/<identifier>/`: the entity page. It shows runs and the actions the user may run on the
entity, so it lives with the actions pages (actions may import catalog; catalog never imports actions).

Sections: properties (mirror and calculation values marked), relations both ways, a small relation graph,
lock state and deployments for running services, runs, the audit trail, and the DAY-2/DELETE actions the
user may run on it. Everything is read through the permission-filtered selectors, in a number of queries
that does not grow with the relations, runs, deployments or audit events shown. (The codebase has no
scorecards yet, so there is no scorecard section.)
"""
from urllib.parse import quote, urlencode

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Exists, F, Q, Window
from django.db.models.functions import RowNumber
from django.http import Http404
from django.shortcuts import render

from actions.access import actions_visible_to, can_execute
from actions.choices import Operation, TriggerType
from actions.models import Run
from actions.selectors.runs import runs_visible_to
from catalog.access import is_admin, user_team_ids
from catalog.models import Blueprint, Entity, Relation
from catalog.selectors.audit_events import audit_events_visible_to
from web.catalog_pages.columns import (CALCULATION, MIRROR, SCHEMA, blueprint_columns, blueprint_url, entity_url,
                                   needs_blueprint_definitions)
from web.catalog_pages.filters import PREFIX as FILTER_PREFIX
from web.catalog_pages.graph import GraphNode, relation_graph
from catalog.selectors import deployments as deployment_selectors
from catalog.selectors.entities import entities_json, entities_visible_to, entity_get_by_identifiers
from catalog.selectors.search import search_queryset
from portal.datetimes import instant_of
from portal.errors import NotFound, PortalError

DOWNSTREAM_PER_GROUP = 20
RECENT_RUNS = 10
RECENT_DEPLOYMENTS = 10
AUDIT_EVENTS = 20
LOCK_KEYS = ("locked", "lockReason", "lockedBy", "lockedAt", "lockedUntil")


def _properties(columns, document):
    rows = []
    errors = document.get("calculationErrors", {})
    for column in columns:
        if column.kind not in (SCHEMA, MIRROR, CALCULATION):
            continue
        rows.append({"title": column.title, "key": column.key, "kind": column.kind if column.computed else "",
                     "note": column.note, "html": column.cell(document, full=True), "error": errors.get(column.key, "")})
    return rows


def _upstream(visible, entity, document):
    """This entity's relations, in the blueprint's order: the targets the user may read (`visible`), linked, and
    the identifiers of those they may not (the entity JSON names them anyway)."""
    blueprint = entity.blueprint
    edges = (Relation.objects.filter(source=entity, target__in=visible).select_related("target__blueprint")
             .order_by("relation", "position", "id"))
    by_relation = {}
    for edge in edges:
        by_relation.setdefault(edge.relation, []).append(edge.target)
    groups = []
    for key, definition in (blueprint.relations or {}).items():
        targets = by_relation.get(key, [])
        named = document["relations"].get(key)
        named = named if isinstance(named, list) else ([named] if named else [])
        shown = {t.identifier for t in targets}
        groups.append({"key": key, "title": definition.get("title") or key, "target": definition.get("target", ""),
                       "entities": [{"entity": t, "url": entity_url(t.blueprint.identifier, t.identifier)} for t in targets],
                       "hidden": [identifier for identifier in named if identifier not in shown]})
    return groups


def _downstream(visible, entity):
    """Entities relating to this one that the user may read (`visible`), grouped by their blueprint and relation:
    the first DOWNSTREAM_PER_GROUP of each group, with the group's size, in one query."""
    partition = [F("source__blueprint_id"), F("relation")]
    edges = (Relation.objects.filter(target=entity, source__in=visible)
             .annotate(rank=Window(RowNumber(), partition_by=partition, order_by=[F("source__identifier").asc()]),
                       group_size=Window(Count("id"), partition_by=partition))
             .filter(rank__lte=DOWNSTREAM_PER_GROUP)
             .select_related("source__blueprint")
             .order_by("source__blueprint__identifier", "relation", "rank"))
    groups = {}
    for edge in edges:
        source_blueprint = edge.source.blueprint
        key = (source_blueprint.identifier, edge.relation)
        if key not in groups:
            definition = (source_blueprint.relations or {}).get(edge.relation, {})
            groups[key] = {
                "blueprint": source_blueprint, "relation": edge.relation,
                "relation_title": definition.get("title") or edge.relation, "count": edge.group_size, "entities": [],
                "all_url": blueprint_url(source_blueprint.identifier) + "?"
                + urlencode({FILTER_PREFIX + edge.relation: entity.identifier}),
            }
        groups[key]["entities"].append({"entity": edge.source,
                                         "url": entity_url(source_blueprint.identifier, edge.source.identifier)})
    return list(groups.values())


def _graph(entity, upstream, downstream):
    def label(e):
        return e.title or e.identifier

    center = GraphNode(label=label(entity), blueprint=entity.blueprint.identifier)
    targets = [GraphNode(label(item["entity"]), item["entity"].blueprint.identifier, item["url"], group["key"])
               for group in upstream for item in group["entities"]]
    hidden_targets = sum(len(group["hidden"]) for group in upstream)
    sources = [GraphNode(label(item["entity"]), group["blueprint"].identifier, item["url"], group["relation"])
               for group in downstream for item in group["entities"]]
    more_sources = sum(group["count"] - len(group["entities"]) for group in downstream)
    return relation_graph(center, sources, targets, more_sources=more_sources, more_targets=hidden_targets)


def _lock(entity):
    """The lock kept in the properties of an entity whose blueprint has a `locked` property (environments and
    running services), or None for blueprints without locks."""
    if "locked" not in entity.blueprint.schema.get("properties", {}):
        return None
    properties = entity.properties
    until = instant_of(properties.get("lockedUntil"))
    return {"locked": properties.get("locked") is True, "reason": properties.get("lockReason"),
            "by": properties.get("lockedBy"), "at": instant_of(properties.get("lockedAt")), "until": until}


def _running_service(user, entity, document, upstream):
    """Deployments (newest first) and locks of a running service, through catalog/selectors/deployments.py."""
    service, environment = document["relations"].get("service"), document["relations"].get("environment")
    if entity.blueprint.identifier != deployment_selectors.RUNNING_SERVICE or not service or not environment:
        return None
    try:
        deployments = deployment_selectors.deployments_visible_to(user, service=service, environment=environment,
                                                                  limit=RECENT_DEPLOYMENTS)
    except NotFound:  # the service or environment is not readable by this user
        deployments = []
    environment_entity = next((item["entity"] for group in upstream if group["key"] == "environment"
                               for item in group["entities"]), None)
    for deployment in deployments:
        deployment["finished"] = instant_of(deployment.get("finishedAt"))
        deployment["url"] = entity_url(deployment_selectors.DEPLOYMENT, deployment["identifier"])
    return {
        "deployments": deployments,
        "environment": environment_entity,
        "environment_url": entity_url(environment_entity.blueprint.identifier, environment_entity.identifier)
        if environment_entity is not None else "",
        "environment_lock": _lock(environment_entity) if environment_entity is not None else None,
        "all_url": blueprint_url(deployment_selectors.DEPLOYMENT) + "?"
        + urlencode({FILTER_PREFIX + "runningService": entity.identifier, "sort": "-$createdAt"}),
    }


def _runs(user, entity):
    runs = Run.objects.filter(Q(entity=entity) | Q(result_entity=entity))
    return list(runs_visible_to(user, runs).select_related("action", "requested_by").order_by("-created_at")[:RECENT_RUNS])


def _audit(user, entity):
    events = audit_events_visible_to(user).filter(resource_type="entity", blueprint=entity.blueprint.identifier,
                                                  identifier=entity.identifier)
    rows = []
    for event in events.order_by("-id")[:AUDIT_EVENTS]:
        before = (event.diff or {}).get("before") or {}
        after = (event.diff or {}).get("after") or {}
        changed = sorted(key for key in set(before.get("properties") or {}) | set(after.get("properties") or {})
                         if (before.get("properties") or {}).get(key) != (after.get("properties") or {}).get(key))
        rows.append({"event": event, "changed": changed})
    return rows


def _runnable_actions(user, entity, team_ids):
    """DAY-2 and DELETE self-service actions of the entity's blueprint the user may run on this entity:
    granted (or ownedByTeam through a team owning it) and, when the action has a condition, matching it.
    The conditions are evaluated together, in one query."""
    actions = list(actions_visible_to(user).filter(
        publish=True, blueprint_identifier=entity.blueprint.identifier, trigger_type=TriggerType.SELF_SERVICE,
        operation__in=[Operation.DAY2, Operation.DELETE]).order_by("operation", "title"))
    mine = user_team_ids(user)
    runnable = []
    for action in actions:
        owned_only = action.permission_settings.get("ownedByTeam", {}).get("execute")
        # Visible and not ownedByTeam means granted; ownedByTeam actions are asked per entity (rarely many).
        if is_admin(user) or not owned_only or (mine & team_ids) or can_execute(user, action, team_ids):
            runnable.append(action)
    checks, conditioned = {}, {}
    for i, action in enumerate(runnable):
        if not action.trigger.get("condition"):
            continue
        try:
            checks[f"c{i}"] = Exists(search_queryset(action.trigger["condition"], user=user, blueprint=entity.blueprint,
                                                     base=Entity.objects.filter(pk=entity.pk)))
            conditioned[f"c{i}"] = action
        except PortalError:  # a condition that no longer compiles: run_request would refuse too
            checks[f"c{i}"], conditioned[f"c{i}"] = None, action
    if conditioned:
        compiled = {name: check for name, check in checks.items() if check is not None}
        matches = (Entity.objects.filter(pk=entity.pk).values(**compiled).first() or {}) if compiled else {}
        failing = {action.pk for name, action in conditioned.items() if not matches.get(name)}
        runnable = [action for action in runnable if action.pk not in failing]
    for action in runnable:
        action.run_url = f"/actions/{quote(action.identifier, safe='')}/run?" + urlencode({"entity": entity.identifier})
    return runnable


@login_required
def entity_detail(request, blueprint, identifier):
    user = request.user
    try:
        entity = entity_get_by_identifiers(blueprint, identifier, user=user)
    except NotFound as exc:
        raise Http404(exc.message)
    bp = entity.blueprint
    definitions = ({b.identifier: b for b in Blueprint.objects.only("identifier", "schema", "relations")}
                   if needs_blueprint_definitions(bp) else {})
    document = entities_json([entity], user=user)[0]
    columns = blueprint_columns(bp, definitions)
    team_ids = set(entity.teams.values_list("id", flat=True))
    visible = entities_visible_to(user).values("pk")
    upstream = _upstream(visible, entity, document)
    downstream = _downstream(visible, entity)
    context = {
        "entity": entity,
        "blueprint": bp,
        "blueprint_url": blueprint_url(bp.identifier),
        "document": document,
        "created": instant_of(document["createdAt"]),
        "updated": instant_of(document["updatedAt"]),
        "properties": _properties(columns, document),
        "upstream": upstream,
        "downstream": downstream,
        "graph": _graph(entity, upstream, downstream),
        "lock": _lock(entity),
        "running_service": _running_service(user, entity, document, upstream),
        "runs": _runs(user, entity),
        "audit": _audit(user, entity),
        "audit_api_url": "/v1/audit-log?" + urlencode({"entity": entity.identifier, "blueprint": bp.identifier}),
        "actions": _runnable_actions(user, entity, team_ids),
    }
    return render(request, "actions/entity.html", context)

