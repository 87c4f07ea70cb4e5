"""The five searches: the API rule set and the hand-written SQL with the same meaning, per parameter index.

Parameters vary with the request index, so no measurement keeps hitting one cached row. The SQL is
what a careful hand would write against the schema (jsonb containment for equality so the
`jsonb_path_ops` GIN index can serve it, a recursive CTE over `catalog_relation` for relatedTo,
`UPPER(title) LIKE UPPER(...)` so the trigram index can serve contains, the relation's rows found from its
target for a one-hop relation rule), ordered by id with
`LIMIT 51` like the API's keyset page of 50 (one extra row tells whether there is a next page).
"""
import json
import random
from dataclasses import dataclass
from datetime import timedelta

import bench_catalog as catalog

SEARCH_BLUEPRINT = "Deployment"
PAGE = 50
WINDOW = timedelta(days=7)
RARE_FIRST_STATUSES = [s for s, _ in sorted(catalog.DEPLOY_STATUS, key=lambda pair: pair[1])]

SELECT = "SELECT e.id, e.identifier, e.title, e.icon, e.properties, e.created_at, e.updated_at, e.created_by, e.updated_by"


@dataclass
class Case:
    key: str
    label: str

    def params(self, i, counts):
        raise NotImplementedError

    def rule(self, params):
        raise NotImplementedError

    def sql(self, params, blueprint_ids):
        raise NotImplementedError


def _rules(*rules):
    return {"combinator": "and", "rules": list(rules)}


class StatusEquals(Case):
    def params(self, i, counts):
        return {"status": RARE_FIRST_STATUSES[i % len(RARE_FIRST_STATUSES)]}

    def rule(self, p):
        return _rules({"property": "status", "operator": "=", "value": p["status"]})

    def sql(self, p, bp):
        return (f"{SELECT} FROM catalog_entity e WHERE e.blueprint_id = %s AND e.properties @> %s::jsonb "
                f"ORDER BY e.id LIMIT {PAGE + 1}", [bp[SEARCH_BLUEPRINT], json.dumps({"status": p["status"]})])


class DeployedBetween(Case):
    def params(self, i, counts):
        rng = random.Random(f"between:{i}")
        start = catalog.EPOCH - timedelta(days=rng.uniform(7, catalog.DATE_SPAN_DAYS))
        return {"from": catalog.iso(start), "to": catalog.iso(start + WINDOW)}

    def rule(self, p):
        return _rules({"property": "deployedAt", "operator": "between", "value": {"from": p["from"], "to": p["to"]}})

    def sql(self, p, bp):
        return (f"{SELECT} FROM catalog_entity e WHERE e.blueprint_id = %s "
                "AND (e.properties->>'deployedAt')::timestamptz BETWEEN %s::timestamptz AND %s::timestamptz "
                f"ORDER BY e.id LIMIT {PAGE + 1}", [bp[SEARCH_BLUEPRINT], p["from"], p["to"]])


class RelatedDownstream(Case):
    def params(self, i, counts):
        rng = random.Random(f"related:{i}")
        return {"domain": catalog.identifier("Domain", rng.randrange(counts["Domain"]))}

    def rule(self, p):
        return _rules({"operator": "relatedTo", "blueprint": "Domain", "value": p["domain"], "direction": "downstream"})

    def sql(self, p, bp):
        # `id = ANY(ARRAY(walk))`, not a join or `IN (walk)`: the planner cannot estimate a recursive CTE and
        # would merge-join it against the whole blueprint in id order; an array of ids is looked up by key.
        return ("WITH RECURSIVE down(id) AS ("
                " SELECT s.id FROM catalog_entity s WHERE s.blueprint_id = %s AND s.identifier = %s"
                " UNION SELECT r.source_id FROM catalog_relation r JOIN down d ON r.target_id = d.id) "
                f"{SELECT} FROM catalog_entity e WHERE e.id = ANY(ARRAY(SELECT id FROM down)) AND e.blueprint_id = %s "
                f"ORDER BY e.id LIMIT {PAGE + 1}", [bp["Domain"], p["domain"], bp[SEARCH_BLUEPRINT]])


class TitleContains(Case):
    def params(self, i, counts):
        return {"word": random.Random(f"contains:{i}").choice(catalog.NOUNS)}

    def rule(self, p):
        return _rules({"property": "$title", "operator": "contains", "value": p["word"]})

    def sql(self, p, bp):
        return (f"{SELECT} FROM catalog_entity e WHERE e.blueprint_id = %s AND UPPER(e.title) LIKE UPPER(%s) "
                f"ORDER BY e.id LIMIT {PAGE + 1}", [bp[SEARCH_BLUEPRINT], f"%{p['word']}%"])


class ServiceEquals(Case):
    """A one-hop relation rule: the deployments whose `service` is X (about eight of them)."""

    def params(self, i, counts):
        rng = random.Random(f"service:{i}")
        return {"service": catalog.identifier("Service", rng.randrange(counts["Service"]))}

    def rule(self, p):
        return _rules({"property": "service", "operator": "=", "value": p["service"]})

    def sql(self, p, bp):
        return (f"{SELECT} FROM catalog_entity e WHERE e.blueprint_id = %s AND e.id IN ("
                " SELECT r.source_id FROM catalog_relation r JOIN catalog_entity t ON t.id = r.target_id"
                " WHERE t.blueprint_id = %s AND t.identifier = %s AND r.relation = 'service') "
                f"ORDER BY e.id LIMIT {PAGE + 1}", [bp[SEARCH_BLUEPRINT], bp["Service"], p["service"]])


CASES = [
    StatusEquals("equality", "a) property = (status, enum)"),
    DeployedBetween("between", "b) date between (7-day window)"),
    RelatedDownstream("relatedTo", "c) relatedTo Domain downstream, 3 hops"),
    TitleContains("contains", "d) $title contains (word)"),
    ServiceEquals("relation", "e) relation = (service, one hop)"),
]


def search_body(case, params):
    return {"query": case.rule(params), "limit": PAGE}


def search_path(blueprint=SEARCH_BLUEPRINT):
    return f"/v1/blueprints/{blueprint}/entities/search"
