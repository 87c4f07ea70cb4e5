"""`/catalog/<blueprint>/<identifier>/`: the entity page. It shows runs and the actions the user may run on the
entity, so it lives with the actions pages (actions may import catalog; catalog never imports actions).

Sections: properties (mirror and calculation values marked), relations both ways, a small relation graph,
lock state and deployments for running services, runs, the audit trail, and the DAY-2/DELETE actions the
user may run on it, and its scorecards (each rule passed or failed, what to fix for the next level). Everything
is read through the permission-filtered selectors, in a number of queries that does not grow with the
relations, runs, deployments or audit events shown.
"""
from urllib.parse import quote, urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from actions.selectors.entity_actions import actions_runnable_on
from actions.selectors.runs import runs_of_entity_visible_to
from catalog.selectors import deployments as deployment_selectors
from catalog.selectors.audit_events import audit_events_about_visible_to
from catalog.selectors.blueprints import blueprints_by_identifier
from catalog.selectors.entities import entities_json, entity_get_by_identifiers, entity_team_ids
from catalog.selectors.relations import relations_from_visible_to, relations_to_visible_to
from portal.datetimes import instant_of
from portal.errors import NotFound
from web.catalog_pages.columns import (AGGREGATION, CALCULATION, MIRROR, SCHEMA, blueprint_columns, blueprint_url,
                                       entity_url, needs_blueprint_definitions, team_url)
from web.catalog_pages.filters import PREFIX as FILTER_PREFIX
from web.catalog_pages.graph import GraphNode, relation_graph

DOWNSTREAM_PER_GROUP = 20
RECENT_RUNS = 10
RECENT_DEPLOYMENTS = 10
AUDIT_EVENTS = 20
LOCK_KEYS = ("locked", "lockReason", "lockedBy", "lockedAt", "lockedUntil")


def _properties(columns, document):
    rows = []
    errors = document.get("calculationErrors", {})
    for column in columns:
        if column.kind not in (SCHEMA, MIRROR, CALCULATION, AGGREGATION):
            continue
        rows.append({"title": column.title, "key": column.key, "kind": column.kind if column.computed else "",
                     "note": column.note, "html": column.cell(document, full=True), "error": errors.get(column.key, "")})
    return rows


def _condition_text(condition):
    if "combinator" in condition:
        inner = f" {condition['combinator']} ".join(_condition_text(c) for c in condition.get("rules", []))
        return f"({inner})"
    value = condition.get("value")
    return " ".join(str(part) for part in (condition.get("property", ""), condition.get("operator", ""),
                                           "" if value is None else value) if part != "")


def _scorecards(blueprint, document):
    """Each scorecard the entity stands on: its level and colour, each rule passed or failed with the level it
    belongs to, and the failing rules of the next level up (what to fix to reach it)."""
    standings = document.get("scorecards") or {}
    cards = []
    for scorecard in blueprint.scorecards:
        standing = standings.get(scorecard["identifier"])
        if standing is None:  # its filter leaves this entity out
            continue
        titles = [level["title"] for level in scorecard["levels"]]
        passed = {rule["identifier"] for rule in standing["rules"] if rule["status"] == "SUCCESS"}
        rules = [{"title": rule["title"], "level": rule["level"], "passed": rule["identifier"] in passed,
                  "description": rule["description"],
                  "conditions": f" {rule['query']['combinator']} ".join(map(_condition_text, rule["query"]["conditions"]))}
                 for rule in scorecard["rules"]]
        reached = titles.index(standing["level"]) if standing["level"] in titles else 0
        next_level = titles[reached + 1] if reached + 1 < len(titles) else None
        cards.append({"title": scorecard["title"], "level": standing["level"],
                      "color": scorecard["levels"][reached]["color"], "next_level": next_level,
                      "to_fix": [r for r in rules if not r["passed"] and r["level"] == next_level],
                      "rules": rules, "passed": len(passed), "total": len(rules)})
    return cards


def _upstream(user, entity, document):
    """This entity's relations, in the blueprint's order: the targets the user may read, linked, and the
    identifiers of those they may not (the entity JSON names them anyway)."""
    blueprint = entity.blueprint
    by_relation = {}
    for edge in relations_from_visible_to(user, entity):
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


def _downstream(user, entity):
    """Entities relating to this one that the user may read, grouped by their blueprint and relation: the first
    DOWNSTREAM_PER_GROUP of each group, with the group's size, in one query."""
    groups = {}
    for edge in relations_to_visible_to(user, entity, per_group=DOWNSTREAM_PER_GROUP):
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


def _audit(user, entity):
    events = audit_events_about_visible_to(user, resource_type="entity", blueprint=entity.blueprint.identifier,
                                           identifier=entity.identifier, limit=AUDIT_EVENTS)
    rows = []
    for event in events:
        before = (event.diff or {}).get("before") or {}
        after = (event.diff or {}).get("after") or {}
        changed = sorted(key for key in set(before.get("properties") or {}) | set(after.get("properties") or {})
                         if (before.get("properties") or {}).get(key) != (after.get("properties") or {}).get(key))
        rows.append({"event": event, "changed": changed})
    return rows


def _runnable_actions(user, entity, team_ids):
    """The actions the user may run on the entity (actions.selectors.entity_actions), each with its form's URL."""
    runnable = actions_runnable_on(user, entity, team_ids)
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
    definitions = blueprints_by_identifier() if needs_blueprint_definitions(bp) else {}
    document = entities_json([entity], user=user)[0]
    columns = blueprint_columns(bp, definitions)
    team_ids = entity_team_ids(entity)
    upstream = _upstream(user, entity, document)
    downstream = _downstream(user, entity)
    context = {
        "entity": entity,
        "blueprint": bp,
        "blueprint_url": blueprint_url(bp.identifier),
        "document": document,
        "teams": [{"name": name, "url": team_url(name)} for name in document["team"]],
        "created": instant_of(document["createdAt"]),
        "updated": instant_of(document["updatedAt"]),
        "properties": _properties(columns, document),
        "scorecards": _scorecards(bp, document),
        "upstream": upstream,
        "downstream": downstream,
        "graph": _graph(entity, upstream, downstream),
        "lock": _lock(entity),
        "running_service": _running_service(user, entity, document, upstream),
        "runs": runs_of_entity_visible_to(user, entity, limit=RECENT_RUNS),
        "audit": _audit(user, entity),
        "audit_api_url": "/v1/audit-log?" + urlencode({"entity": entity.identifier, "blueprint": bp.identifier}),
        "actions": _runnable_actions(user, entity, team_ids),
    }
    return render(request, "actions/entity.html", context)

