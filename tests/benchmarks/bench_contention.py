"""Issue 12's contention run: 16 clients upserting overlapping entities over HTTP.

Every request is a merge upsert (`POST /v1/blueprints/benchContended/entities?upsert=true&merge=true
&create_missing_related_entities=true`) of one of ENTITIES entities, each naming RELATED other entities of
the same small set as `dependsOn` targets in its own order, and one of GROUPS groups (created as
placeholders the first time): so concurrent requests write the same rows and relate to each other's rows
from both sides, the shape that deadlocked (issue 12: 13 of 2,128 requests died with "deadlock
detected"). Prints throughput, p50/p99 and the error count (anything but 200/201, a 503 `busy` included),
with the first error's answer.
"""
from bench_http import HttpError, run_loop

CONCURRENCY = 16
ENTITIES = 24
RELATED = 3
GROUPS = 4
BLUEPRINTS = [
    {"identifier": "benchContendedGroup", "title": "Contended group", "schema": {"properties": {}, "required": []}},
    {"identifier": "benchContended", "title": "Contended entity",
     "schema": {"properties": {"counter": {"type": "number"}, "writer": {"type": "string"}}, "required": []},
     "relations": {"dependsOn": {"title": "Depends on", "target": "benchContended", "many": True, "required": False},
                   "group": {"title": "Group", "target": "benchContendedGroup", "many": False, "required": False}}},
]
PATH = "/v1/blueprints/benchContended/entities?upsert=true&merge=true&create_missing_related_entities=true"


def seed(client):
    for blueprint in BLUEPRINTS:
        status, data, _ = client.request("POST", "/v1/blueprints", blueprint)
        if status not in (201, 409):  # 409: a kept database has it already
            raise HttpError(f"POST /v1/blueprints {blueprint['identifier']} -> {status}: {data[:300]!r}")


def body(i):
    """Request i: entity i mod ENTITIES, related to the next RELATED entities in an order that depends on i."""
    index = i % ENTITIES
    related = [f"contended-{(index + step) % ENTITIES:02d}" for step in range(1, RELATED + 1)]
    if (i // ENTITIES) % 2:
        related.reverse()
    return {"identifier": f"contended-{index:02d}", "title": f"Contended {index}",
            "properties": {"counter": i, "writer": f"request-{i}"},
            "relations": {"dependsOn": related, "group": f"group-{index % GROUPS}"}}


def measure(client, args, meter):
    def call(i):
        status, data, elapsed = client.request("POST", PATH, body(abs(i)))
        if status not in (200, 201):
            raise HttpError(f"{status}: {data[:200]!r}")
        return elapsed

    return run_loop("contended upserts", call, requests=args.contention_requests, seconds=args.duration * 2,
                     concurrency=CONCURRENCY, warmup=0, meter=meter)


def report_lines(result):
    if not result:
        return []
    return [f"contended upserts, {result['concurrency']} clients over {ENTITIES} entities (issue 12): "
            f"{result['req_per_s']:.1f} req/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
            f"{result['requests']:,} ok, {result['errors']} errors"
            + (f" (first: {result.get('first_error')})" if result["errors"] else "")]
