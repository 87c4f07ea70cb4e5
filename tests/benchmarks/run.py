#!/usr/bin/env python
"""`make bench`: load a synthetic catalog through the HTTP API and print what this machine does with it.

Figures, not pass/fail: search p50/p95 (five query shapes) and their ratio to the same query as raw
SQL, bulk-ingest throughput, single-upsert latency, by-identifier GET throughput, the catalog table
page's latency (first, deep, sorted, searched and filtered pages), the CI lock check's throughput next
to a bare view running the same query, deployment-report latency, scorecard evaluation (issue 15: five
scorecards defined and one edited over every Deployment, and the upsert p95 with and without them), issue 18's
Backstage import (generated descriptors through a file location, start to all searchable) and web worker memory, next to DESIGN.md's targets, and issue 16's ratios (bench_ratios.py: each figure over a bare
view or raw SQL measured in the same run), printed last and written under `ratios`. `--only` picks parts. Uses its own database (`portal_bench` by default) on the
configured PostgreSQL (DATABASE_URL, else the embedded one), served by gunicorn on a free port.
Results also go to $PORTAL_HOME/bench-results.json. See tests/benchmarks/README.md.
"""
import argparse
import json
import math
import os
import platform
import queue
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(ROOT)]

import psycopg  # noqa: E402

import bench_backstage as backstage  # noqa: E402
import bench_catalog as catalog  # noqa: E402
import bench_contention as contention  # noqa: E402
import bench_deployments as deploys  # noqa: E402
import bench_pages as pages  # noqa: E402
import bench_queries as queries  # noqa: E402
import bench_ratios as ratios  # noqa: E402
import bench_scorecards as scorecards  # noqa: E402
from bench_http import Client, HttpError, Sample, percentile, run_loop  # noqa: E402
from bench_server import (CeleryWorker, CpuMeter, Gunicorn, api_credentials, bench_secret_key, database_create,  # noqa: E402
                          database_drop, database_exists, database_url_named, entity_count, manage, outbox_drained,
                          redis_url_with_db)

BULK_SIZE = 20  # the API's maximum per bulk request
EMAIL = "bench@example.com"
TARGETS = {"search_p95_ms": 50, "ingest_per_s": 1000, "get_per_s": 650, "worker_rss_mb": 150,
           "lock_ratio": 0.5, "lock_p99_ms": 20}
PARTS = ("ingest", "search", "upsert", "get", "pages", "locks", "deployments", "contention", "scorecards", "backstage")
CATALOG_PARTS = {"ingest", "search", "upsert", "get", "pages", "scorecards"}  # the parts that need the synthetic catalog loaded


def parts_list(value):
    parts = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [part for part in parts if part not in PARTS]
    if unknown or not parts:
        raise argparse.ArgumentTypeError(f"{', '.join(unknown) or value!r}: choose from {', '.join(PARTS)}")
    return parts


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--entities", type=int, default=100_000, help="catalog size")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per latency measurement")
    parser.add_argument("--duration", type=float, default=30.0, help="time limit (s) per measurement")
    parser.add_argument("--warmup", type=int, default=20, help="unrecorded requests before each measurement")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads for the load and the GET throughput")
    parser.add_argument("--get-requests", type=int, default=5000, help="requests in the by-identifier GET throughput run")
    parser.add_argument("--only", type=parts_list, default=",".join(PARTS), metavar="PART[,PART...]",
                        help=f"measure only these parts ({', '.join(PARTS)}); the synthetic catalog is loaded (unless "
                             f"--keep reuses it) only for {', '.join(sorted(CATALOG_PARTS))}")
    parser.add_argument("--lock-requests", type=int, default=4000,
                        help=f"requests per lock-check throughput run (API and bare view, {deploys.LOCK_CONCURRENCY} clients)")
    parser.add_argument("--deploy-requests", type=int, default=300, help="sequential POST /v1/deployments reports")
    parser.add_argument("--contention-requests", type=int, default=2000,
                        help=f"overlapping upserts of the contention run ({contention.CONCURRENCY} clients)")
    parser.add_argument("--upsert-requests", type=int, default=400,
                        help="single upserts per round of the scorecards part (with and without scorecards, "
                             f"{scorecards.ROUNDS} rounds each)")
    parser.add_argument("--scorecard-timeout", type=float, default=900.0,
                        help="client time limit (s) for one scorecard PUT (the evaluation of the whole blueprint)")
    parser.add_argument("--backstage-descriptors", type=int, default=10_000,
                        help="generated Backstage descriptors the backstage part imports through a location")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--database", default="portal_bench", help="database name on the configured server")
    parser.add_argument("--redis-db", type=int, default=15,
                        help="Redis database for the server's cache (rate-limit counters): one of its own, so "
                             "test sessions that clear the cache on the same Redis cannot disturb the run")
    parser.add_argument("--keep", action="store_true",
                        help="reuse the bench database when it already holds --entities entities (skips the load); "
                             "when --only needs no synthetic catalog, any migrated bench database")
    parser.add_argument("--drop", action="store_true", help="drop the bench database at the end")
    parser.add_argument("--load-timeout", type=float, default=1800.0, help="time limit (s) for the whole load")
    parser.add_argument("--no-analyze", action="store_true", help="skip VACUUM ANALYZE after the load")
    parser.add_argument("--search-wait", type=float, default=0.0,
                        help="wait up to this many seconds for the search route to appear (it is polled)")
    parser.add_argument("--output", default=None, help="JSON results path (default: $PORTAL_HOME/bench-results.json)")
    args = parser.parse_args(argv)
    if args.entities < 100:
        parser.error("--entities must be at least 100")
    if min(args.requests, args.concurrency, args.get_requests, args.workers, args.threads, args.lock_requests,
           args.deploy_requests, args.contention_requests, args.upsert_requests, args.scorecard_timeout) < 1:
        parser.error("counts must be positive")
    return args


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _terminate(signum, frame):
    log(f"stopped by signal {signum}")
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop gunicorn


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def create_blueprints(client):
    for blueprint in catalog.blueprints():
        status, data, _ = client.request("POST", "/v1/blueprints", blueprint)
        if status == 409:
            continue
        if status != 201:
            raise HttpError(f"POST /v1/blueprints {blueprint['identifier']} -> {status}: {data[:500]!r}")


def load_blueprint(client, blueprint, counts, *, concurrency, deadline):
    """POST all entities of one blueprint in bulk requests of 20 from `concurrency` threads."""
    count = counts[blueprint]
    path = f"/v1/blueprints/{blueprint}/entities/bulk?upsert=true"  # upsert: a retried batch stays idempotent
    batches = queue.Queue(maxsize=concurrency * 4)
    sample = Sample(f"bulk {blueprint}", concurrency=concurrency)
    state = {"loaded": 0, "failed": 0}
    lock = threading.Lock()

    def worker():
        while True:
            batch = batches.get()
            if batch is None:
                return
            if time.perf_counter() > deadline:
                continue  # drain without sending: the load timed out
            try:
                status, data, elapsed = client.request("POST", path, {"entities": batch})
                body = json.loads(data) if data else {}
            except Exception as exc:  # noqa: BLE001 - counted, the load goes on
                status, body, elapsed = 0, {"message": f"{type(exc).__name__}: {exc}"}, 0.0
            with lock:
                if status in (200, 207):
                    sample.latencies.append(elapsed)
                    done = len(body.get("entities", []))
                    state["loaded"] += done
                    state["failed"] += len(batch) - done
                    if body.get("errors") and not sample.first_error:
                        sample.first_error = json.dumps(body["errors"][0])[:300]
                else:
                    sample.errors += 1
                    state["failed"] += len(batch)
                    sample.first_error = sample.first_error or f"{status}: {str(body)[:300]}"

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    last_report = started
    batch = []
    for index in range(count):
        batch.append(catalog.entity(blueprint, index, counts))
        if len(batch) == BULK_SIZE or index == count - 1:
            batches.put(batch)
            batch = []
        now = time.perf_counter()
        if now - last_report > 10:
            last_report = now
            log(f"  {blueprint}: {state['loaded']:,}/{count:,} loaded, {state['loaded'] / (now - started):,.0f}/s")
        if now > deadline:
            break
    for _ in threads:
        batches.put(None)
    for thread in threads:
        thread.join()
    sample.wall = time.perf_counter() - started
    sample.extra = {"entities": count, "loaded": state["loaded"], "failed": state["failed"],
                    "entities_per_s": round(state["loaded"] / sample.wall, 1) if sample.wall else None}
    return sample


def load_catalog(client, counts, args):
    deadline = time.perf_counter() + args.load_timeout
    per_blueprint, started = {}, time.perf_counter()
    for blueprint, _ in catalog.SHARES:
        sample = load_blueprint(client, blueprint, counts, concurrency=args.concurrency, deadline=deadline)
        per_blueprint[blueprint] = sample
        log(f"  {blueprint}: {sample.extra['loaded']:,} in {sample.wall:.1f}s = {sample.extra['entities_per_s']:,}/s"
            + (f"; {sample.extra['failed']} FAILED, first: {sample.first_error}" if sample.extra["failed"] else ""))
        if time.perf_counter() > deadline:
            log(f"  load stopped at the --load-timeout of {args.load_timeout:.0f}s")
            break
    wall = time.perf_counter() - started
    loaded = sum(s.extra["loaded"] for s in per_blueprint.values())
    all_latencies = [x for s in per_blueprint.values() for x in s.latencies]
    return {
        "entities": sum(counts.values()), "loaded": loaded, "failed": sum(s.extra["failed"] for s in per_blueprint.values()),
        "wall_s": round(wall, 2), "entities_per_s": round(loaded / wall, 1) if wall else None,
        "bulk_request_p50_ms": round(percentile(all_latencies, 50) * 1000, 2),
        "bulk_request_p95_ms": round(percentile(all_latencies, 95) * 1000, 2),
        "concurrency": args.concurrency, "batch": BULK_SIZE,
        "per_blueprint": {bp: {"entities_per_s": s.extra["entities_per_s"], "loaded": s.extra["loaded"],
                               "failed": s.extra["failed"], "wall_s": round(s.wall, 2),
                               "request_p50_ms": round(s.ms(50), 2), "request_p95_ms": round(s.ms(95), 2),
                               **({"first_error": s.first_error} if s.first_error else {})}
                          for bp, s in per_blueprint.items()},
    }


def vacuum_analyze(url):
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("catalog_entity", "catalog_relation", "catalog_entity_teams", "audit_auditevent"):
            if conn.execute("SELECT to_regclass(%s)", [table]).fetchone()[0] is not None:
                conn.execute(f"VACUUM ANALYZE {table}")


# --------------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------------


def search_route_present(client):
    """The search route answers 200 for an empty rule set; 404/405 mean it is not routed yet."""
    status, data, _ = client.request("POST", queries.search_path(), {"query": {"combinator": "and", "rules": []}, "limit": 1})
    return status == 200, status, data[:300]


def _sql_rows(conn, case, params, blueprint_ids):
    sql, values = case.sql(params, blueprint_ids)
    return conn.execute(sql, values).fetchall()


def check_equivalence(client, conn, case, counts, blueprint_ids, samples=5):
    """Same parameters through the API and through SQL: do they name the same entities (first page)?"""
    agree, notes = 0, []
    for i in range(samples):
        params = case.params(i, counts)
        body = client.json("POST", queries.search_path(), queries.search_body(case, params))
        api_ids = [e["identifier"] for e in body.get("entities", [])]
        sql_ids = [row[1] for row in _sql_rows(conn, case, params, blueprint_ids)][: queries.PAGE]
        if api_ids == sql_ids:
            agree += 1
        elif set(api_ids) == set(sql_ids):
            agree += 1
            notes.append("same entities, different order")
        else:
            notes.append(f"params {params}: API {len(api_ids)} rows vs SQL {len(sql_ids)} rows"
                         f" (API first {api_ids[:3]}, SQL first {sql_ids[:3]})")
    return {"agree": agree, "checked": samples, "notes": sorted(set(notes))[:3]}


def measure_search(client, case, counts, args, meter):
    def call(i):
        status, data, elapsed = client.request("POST", queries.search_path(),
                                               queries.search_body(case, case.params(i, counts)))
        if status != 200:
            raise HttpError(f"{status}: {data[:200]!r}")
        return elapsed

    return run_loop(f"API {case.key}", call, requests=args.requests, seconds=args.duration, warmup=args.warmup,
                    meter=meter)


def measure_searches(client, bench_url, counts, args, meter, results):
    """The searches (bench_queries.CASES) through the API next to their SQL; `search_missing` when the route is not there."""
    with psycopg.connect(bench_url, autocommit=True, prepare_threshold=None) as conn:
        blueprint_ids = dict(conn.execute("SELECT identifier, id FROM catalog_blueprint").fetchall())
        present, status, body = search_route_present(client)
        waited_until = time.monotonic() + args.search_wait
        while not present and time.monotonic() < waited_until:
            log(f"search route not there yet ({status}); polling")
            time.sleep(15)
            present, status, body = search_route_present(client)
        if present:
            results["search"] = {}
            for case in queries.CASES:
                log(f"search {case.label}")
                equivalence = check_equivalence(client, conn, case, counts, blueprint_ids)
                api = per_request_cpu(measure_search(client, case, counts, args, meter))
                sql = measure_sql(conn, case, counts, blueprint_ids, args)
                bare = measure_bare_search(client, case, counts, args)
                results["search"][case.key] = {
                    "label": case.label, "api": api.summary(), "sql": sql.summary(), "bare": bare.summary(),
                    "equivalence": equivalence,
                    # of the p50s as measured, not as rounded for the report: a verdict
                    "ratio_p50": api.ms(50) / sql.ms(50) if sql.count and api.count else None,
                    "bare_ratio_p50": round(api.ms(50) / bare.ms(50), 2) if bare.count and api.count else None,
                    "rule": case.rule(case.params(0, counts)), "sql_text": case.sql(case.params(0, counts), blueprint_ids)[0],
                }
        else:
            results["search_missing"] = (f"POST {queries.search_path()} answered {status} "
                                         f"({body!r}); the search route is not deployed")
            log(results["search_missing"])


def measure_bare_search(client, case, counts, args):
    """The shape's hand-written SQL behind a bare view over HTTP (bench_urls.bare_search): a second reference."""
    def call(i):
        status, data, elapsed = client.request("POST", f"/bench/bare-search/{case.key}", case.params(i, counts))
        if status != 200:
            raise HttpError(f"{status}: {data[:200]!r}")
        return elapsed

    return run_loop(f"bare {case.key}", call, requests=args.requests, seconds=args.duration, warmup=args.warmup)


def measure_sql(conn, case, counts, blueprint_ids, args):
    def call(i):
        sql, values = case.sql(case.params(i, counts), blueprint_ids)
        started = time.perf_counter()
        conn.execute(sql, values).fetchall()
        return time.perf_counter() - started

    return run_loop(f"SQL {case.key}", call, requests=args.requests, seconds=args.duration, warmup=args.warmup)


def measure_upsert(client, counts, args, meter, *, requests=None, offset=0, name="single upsert"):
    """Updates of existing Deployments, sequential; `offset` shifts which ones and their versions, so a second
    round writes new values rather than the ones the first round left."""
    deployments = counts["Deployment"]

    def call(i):
        index = ((i + offset) * 7919) % deployments
        body = catalog.entity("Deployment", index, counts, version_bump=abs(i + offset) + 1)
        status, data, elapsed = client.request("POST", "/v1/blueprints/Deployment/entities?upsert=true", body)
        if status not in (200, 201):
            raise HttpError(f"{status}: {data[:200]!r}")
        return elapsed

    return run_loop(name, call, requests=requests or args.requests, seconds=args.duration, warmup=args.warmup,
                    meter=meter)


def measure_get(client, counts, args, meter):
    deployments = counts["Deployment"]

    def call(i):
        path = f"/v1/blueprints/Deployment/entities/{catalog.identifier('Deployment', (i * 104729) % deployments)}"
        status, data, elapsed = client.request("GET", path)
        if status != 200:
            raise HttpError(f"{status}: {data[:200]!r}")
        return elapsed

    return run_loop("GET by identifier", call, requests=args.get_requests, seconds=args.duration,
                    concurrency=args.concurrency, warmup=args.warmup, meter=meter)


def measure_bare_get(client, counts, args, meter):
    """The same lookups as measure_get through bench_urls.bare_entity (one SQL statement, no DRF/auth): the floor."""
    deployments = counts["Deployment"]

    def call(i):
        path = f"/bench/bare-entity/Deployment/{catalog.identifier('Deployment', (i * 104729) % deployments)}"
        status, data, elapsed = client.request("GET", path)
        if status != 200:
            raise HttpError(f"{status}: {data[:200]!r}")
        return elapsed

    return run_loop("GET bare entity", call, requests=args.get_requests, seconds=args.duration,
                    concurrency=args.concurrency, warmup=args.warmup, meter=meter)


def per_request_cpu(sample):
    """Add the workers' and PostgreSQL's CPU milliseconds per measured request (from the CpuMeter result)."""
    n = max(sample.count, 1)
    sample.extra["worker_cpu_ms_per_req"] = round(sample.extra["cpu_workers_s"] * 1000 / n, 2)
    sample.extra["pg_cpu_ms_per_req"] = round(sample.extra["cpu_postgres_s"] * 1000 / n, 2)
    sample.extra["idle_ceiling_req_per_s"] = _ceiling(sample.extra["worker_cpu_ms_per_req"] + sample.extra["pg_cpu_ms_per_req"])
    return sample


def _ceiling(cpu_ms):
    """What the server side alone could do if it had every core of this machine (no client, nobody else)."""
    return round((os.cpu_count() or 1) * 1000 / cpu_ms, 1) if cpu_ms else None


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def _f(value, fmt="{:,.1f}"):
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def _verdict(ok):
    return "ok" if ok else "MISSED"


def _cpu(row):
    """' cpu/req: web 5.1 ms, pg 0.8 ms; others 30% busy' — where the time went, and how noisy the machine was."""
    parts = []
    if row.get("worker_cpu_ms_per_req") is not None:
        parts.append(f"cpu/req web {row['worker_cpu_ms_per_req']:.1f} ms, pg {row['pg_cpu_ms_per_req']:.1f} ms")
    if row.get("idle_ceiling_req_per_s"):
        parts.append(f"CPU ceiling on an idle machine ~{row['idle_ceiling_req_per_s']:,.0f} req/s")
    if row.get("others_busy_pct") is not None:
        parts.append(f"others kept the machine {row['others_busy_pct']:.0f}% busy")
    return ("; " + "; ".join(parts)) if parts else ""


def _deployment_lines(results):
    lines = []
    locks = results.get("locks")
    if locks:
        api, bare = locks["api"], locks["bare"]
        lines.append(f"lock check, {locks['concurrency']} concurrent clients ({locks['services']} services x "
                     f"{locks['environments']} environments, all unlocked; {locks['catalog_entities']:,} entities in the catalog):")
        for label, row in (("GET /v1/locks/{service}/{environment}", api), ("bare view, same query, no DRF/auth", bare)):
            lines.append(f"    {label:38} {_f(row['req_per_s']):>8} req/s  p50 {row['p50_ms']:.1f} ms  p99 {row['p99_ms']:.1f} ms"
                         f"  ({row['requests']:,} requests{_cpu(row)})"
                         + (f"  errors={row['errors']} ({row.get('first_error')})" if row["errors"] else ""))
        ratio_ok = locks["ratio"] is not None and locks["ratio"] >= TARGETS["lock_ratio"]
        lines.append(f"    API/bare throughput {_f(locks['ratio'], '{:.2f}')} [target >= {TARGETS['lock_ratio']}: "
                     f"{_verdict(ratio_ok)}]; API p99 {api['p99_ms']:.1f} ms [target <= {TARGETS['lock_p99_ms']} ms: "
                     f"{_verdict(api['p99_ms'] <= TARGETS['lock_p99_ms'])}]")
        lines.append(f"    ({locks['concurrency']} clients in a closed loop wait {locks['concurrency']} / throughput on average: "
                     f"p99 <= {TARGETS['lock_p99_ms']} ms needs well over "
                     f"{locks['concurrency'] * 1000 / TARGETS['lock_p99_ms']:,.0f} req/s)")
        for note in locks["disagree"][:3]:
            lines.append(f"    API and bare view disagree: {note}")
    deployments = results.get("deployments")
    if deployments:
        lines.append(f"POST /v1/deployments, sequential: p50 {deployments['p50_ms']:.1f} ms, p95 {deployments['p95_ms']:.1f} ms, "
                     f"mean {deployments['mean_ms']:.1f} ms, {deployments['req_per_s']:.1f} req/s over "
                     f"{deployments['requests']:,} reports{_cpu(deployments)}"
                     + (f"  errors={deployments['errors']} ({deployments.get('first_error')})" if deployments["errors"] else ""))
    after = (deployments or {}).get("after_commit")
    if after:
        stale = after["aggregates_stale"]
        lines.append(f"    after the commits (the Celery worker): {after['worker_cpu_ms_per_req']:.1f} ms of worker CPU per report; "
                     f"all done {after['drained_s']:.1f} s after the last report ({after['pending']} pending, "
                     f"{after['failed']} failed); Component aggregation values "
                     + ("all current" if not stale else f"NOT current: {'; '.join(stale[:3])}"))
    bare = results.get("deployments_bare")
    if bare:
        lines.append(f"    bare view, one INSERT in one transaction: p50 {bare['p50_ms']:.1f} ms, {bare['req_per_s']:.1f} req/s "
                     f"over {bare['requests']:,} writes{_cpu(bare)}"
                     + (f"  errors={bare['errors']} ({bare.get('first_error')})" if bare["errors"] else ""))
    statements = results.get("deployment_statements")
    if statements:
        lines.append(f"    SQL statements of one report: {statements.get('plain')} on the plain deployment blueprints, "
                     f"{statements.get('aggregated')} as seeded (Component aggregations: "
                     f"{', '.join(statements.get('component_aggregations') or []) or 'none'})"
                     + (f"  ERROR {statements['error']}" if statements.get("error") else ""))
    return lines


def report(results):
    env = results["environment"]
    catalog_size = (f"{env['entities']:,} entities" if env.get("synthetic_catalog", True)
                    else "no synthetic catalog")
    lines = ["", f"Portal catalog benchmark — {catalog_size}, {env['cpus']} CPUs, gunicorn "
                 f"{env['workers']} workers x {env['threads']} threads, {env['when']} (load average at start "
                 f"{' '.join(str(x) for x in env['loadavg_at_start'])})"]
    if set(env.get("parts", PARTS)) != set(PARTS):
        lines.append(f"only: {', '.join(env['parts'])}")
    lines.append("")
    search = results.get("search")
    if search:
        lines.append(f"{'search Deployment, limit 50, concurrency 1':42} {'p50 ms':>7} {'p95 ms':>7} {'mean':>7} {'req/s':>6}"
                     f" {'SQL p50':>7} {'SQL p95':>7} {'p50/SQL':>8} {'bare p50':>8} {'p50/bare':>8} {'web cpu':>7}"
                     f" {'pg cpu':>6} {'others':>6}  p95<=50  API=SQL")
        for row in search.values():
            api, sql = row["api"], row["sql"]
            lines.append(f"{row['label']:42} {_f(api['p50_ms'], '{:.1f}'):>7} {_f(api['p95_ms'], '{:.1f}'):>7}"
                         f" {_f(api['mean_ms'], '{:.1f}'):>7} {_f(api['req_per_s']):>6}"
                         f" {_f(sql['p50_ms'], '{:.2f}'):>7} {_f(sql['p95_ms'], '{:.2f}'):>7}"
                         f" {_f(row['ratio_p50'], '{:.1f}x'):>8} {_f(row.get('bare', {}).get('p50_ms'), '{:.2f}'):>8}"
                         f" {_f(row.get('bare_ratio_p50'), '{:.1f}x'):>8} {_f(api.get('worker_cpu_ms_per_req'), '{:.1f}'):>7}"
                         f" {_f(api.get('pg_cpu_ms_per_req'), '{:.1f}'):>6} {_f(api.get('others_busy_pct'), '{:.0f}%'):>6}"
                         f"  {_verdict(api['p95_ms'] <= TARGETS['search_p95_ms']):7}"
                         f"  {row['equivalence']['agree']}/{row['equivalence']['checked']}"
                         + (f"  errors={api['errors']}: {api.get('first_error')}" if api["errors"] else ""))
            for note in row["equivalence"]["notes"]:
                lines.append(f"{'':44}note: {note}")
        lines.append(f"{'':44}(web/pg cpu: CPU ms per request in the gunicorn workers / the bench database's"
                     " backends; others: share of the machine busy with anything else; bare: the same SQL behind a"
                     " plain Django view over HTTP, no DRF, token, rate limit or documents, a reference beside"
                     " search_vs_sql's)")
    elif results.get("search_missing"):
        lines.append(f"search: NOT MEASURED — {results['search_missing']}")
    if search or results.get("search_missing"):
        lines.append("")
    ingest = results.get("ingest")
    if ingest and ingest.get("skipped"):
        lines.append(f"bulk ingest: skipped ({ingest['skipped']})")
    elif ingest:
        loaded = max(ingest["loaded"], 1)
        lines.append(f"bulk ingest: {ingest['loaded']:,} entities in {ingest['wall_s']:.1f}s = "
                     f"{_f(ingest['entities_per_s'])} entities/s  [target >= {TARGETS['ingest_per_s']:,}: "
                     f"{_verdict((ingest['entities_per_s'] or 0) >= TARGETS['ingest_per_s'])}]"
                     + (f"  {ingest['failed']:,} FAILED" if ingest["failed"] else ""))
        lines.append(f"    {ingest['concurrency']} threads x {ingest['batch']} entities/request; request p50 "
                     f"{ingest['bulk_request_p50_ms']:.1f} ms, p95 {ingest['bulk_request_p95_ms']:.1f} ms; cpu/entity web "
                     f"{ingest.get('cpu_workers_s', 0) * 1000 / loaded:.2f} ms, "
                     f"pg {ingest.get('cpu_postgres_s', 0) * 1000 / loaded:.2f} ms"
                     + (f"; CPU ceiling on an idle machine ~{ingest['idle_ceiling_entities_per_s']:,.0f} entities/s"
                        if ingest.get("idle_ceiling_entities_per_s") else "")
                     + (f"; others kept the machine {ingest['others_busy_pct']:.0f}% busy"
                        if ingest.get("others_busy_pct") is not None else ""))
        for bp, row in ingest["per_blueprint"].items():
            lines.append(f"    {bp:12} {row['loaded']:>8,} in {row['wall_s']:>7.1f}s = {_f(row['entities_per_s']):>8}/s"
                         f"   request p50 {row['request_p50_ms']:.1f} ms, p95 {row['request_p95_ms']:.1f} ms"
                         + (f"   FAILED {row['failed']}: {row.get('first_error', '')}" if row["failed"] else ""))
    upsert = results.get("upsert")
    if upsert:
        lines.append(f"single upsert (update a Deployment): p50 {upsert['p50_ms']:.1f} ms, p95 {upsert['p95_ms']:.1f} ms, "
                     f"mean {upsert['mean_ms']:.1f} ms, {upsert['req_per_s']:.1f} req/s at concurrency 1{_cpu(upsert)}"
                     + (f"  errors={upsert['errors']} ({upsert.get('first_error')})" if upsert["errors"] else ""))
    get = results.get("get")
    if get:
        lines.append(f"GET by identifier: {get['req_per_s']:,.1f} req/s at concurrency {get['concurrency']} "
                     f"[target > {TARGETS['get_per_s']}: {_verdict(get['req_per_s'] > TARGETS['get_per_s'])}] "
                     f"(p50 {get['p50_ms']:.1f} ms, p95 {get['p95_ms']:.1f} ms, {get['requests']:,} requests{_cpu(get)})"
                     + (f"  errors={get['errors']} ({get.get('first_error')})" if get["errors"] else ""))
    bare_get = results.get("get_bare")
    if bare_get:
        lines.append(f"    bare view, same lookup, one SQL statement, no DRF/auth: {bare_get['req_per_s']:,.1f} req/s "
                     f"(p50 {bare_get['p50_ms']:.1f} ms, p95 {bare_get['p95_ms']:.1f} ms, "
                     f"{bare_get['requests']:,} requests{_cpu(bare_get)})"
                     + (f"  errors={bare_get['errors']} ({bare_get.get('first_error')})" if bare_get["errors"] else ""))
    if results.get("pages"):
        lines.extend(["", *pages.report_lines(results["pages"])])
    deployment_lines = _deployment_lines(results)
    if deployment_lines and lines[-1]:
        lines.append("")
    lines.extend(deployment_lines)
    if results.get("contention"):
        lines.extend(["", *contention.report_lines(results["contention"])])
    if results.get("scorecards"):
        lines.extend(["", *scorecards.report_lines(results["scorecards"])])
    if results.get("backstage"):
        lines.extend(["", *backstage.report_lines(results["backstage"])])
    memory = results.get("workers")
    if memory:
        worst = max(w["rss_mb"] for w in memory)
        peak = max((w["peak_rss_mb"] or 0) for w in memory)
        lines.append(f"web worker RSS after the run: {', '.join(format(w['rss_mb'], '.0f') for w in memory)} MB "
                     f"(peak {peak:.0f} MB)  [target <= {TARGETS['worker_rss_mb']} MB: "
                     f"{_verdict(worst <= TARGETS['worker_rss_mb'])}]")
        lines.append(f"web worker CPU over the run: {', '.join(format(w.get('cpu_s') or 0, '.0f') for w in memory)} s "
                     "(connections spread over every worker: portal/gunicorn_config.py's reuse_port)")
    if results.get("client_cpu_s") is not None:
        lines.append(f"(this client used {results['client_cpu_s']:.0f} s of CPU on the same machine during the run)")
    if results.get("ratios"):
        lines.extend(["", *ratios.report_lines(results["ratios"])])
        if results.get("loadavg_at_end"):
            lines.append(f"    (load average at start {' '.join(str(x) for x in env['loadavg_at_start'])}, at the end "
                         f"{' '.join(str(x) for x in results['loadavg_at_end'])})")
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from portal.embedded.addresses import portal_home
    from portal.embedded.holders import ensure_embedded_services

    services = ensure_embedded_services()  # honours DATABASE_URL / REDIS_URL; we hold the embedded ones till exit
    base_url = os.environ.get("DATABASE_URL") or services["DATABASE_URL"]
    redis_url = redis_url_with_db(os.environ.get("REDIS_URL") or services["REDIS_URL"], args.redis_db)
    bench_url = database_url_named(base_url, args.database)
    output = Path(args.output) if args.output else portal_home() / "bench-results.json"
    counts = catalog.plan(args.entities)
    env = {**os.environ, "DATABASE_URL": bench_url, "REDIS_URL": redis_url, "SECRET_KEY": bench_secret_key(),
           "API_RATE_LIMIT": str(10**9), "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "portal.settings",
           "DEBUG": "false", "BACKSTAGE_FILE_ROOTS": str(portal_home() / "bench-backstage")}
    results = {"environment": {"entities": args.entities, "counts": counts, "cpus": os.cpu_count(),
                               "workers": args.workers, "threads": args.threads, "database": args.database,
                               "python": platform.python_version(), "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "requests": args.requests, "warmup": args.warmup, "concurrency": args.concurrency,
                               "parts": args.only, "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
               "targets": TARGETS}
    cpu_start = time.process_time()

    parts = set(args.only)
    needs_catalog = bool(parts & CATALOG_PARTS)
    results["environment"]["synthetic_catalog"] = needs_catalog
    synthetic = (entity_count(bench_url, [bp for bp, _ in catalog.SHARES])
                 if args.keep and database_exists(base_url, args.database) else None)
    # The lock and deployment parts need no synthetic catalog: any migrated bench database will do.
    reuse = synthetic == args.entities if needs_catalog else synthetic is not None
    if reuse:
        log(f"reusing database {args.database} ({synthetic:,} synthetic entities)")
    else:
        log(f"creating database {args.database} on {base_url.split('?')[0]}")
        database_drop(base_url, args.database)
        database_create(base_url, args.database)
    log("migrating")
    manage(env, "migrate", "--no-input")  # a no-op on a kept database that is up to date
    credentials = api_credentials(env, EMAIL)

    # The server alone runs bench_settings: the portal's URLs plus the bare lock view (bench_urls.py).
    server_env = {**env, "DJANGO_SETTINGS_MODULE": "bench_settings",
                  "PYTHONPATH": os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)}
    server = Gunicorn(server_env, workers=args.workers, threads=args.threads,
                      log_path=portal_home() / "log" / "bench-gunicorn.log")
    try:
        server.start()
        log(f"gunicorn on 127.0.0.1:{server.port} (workers {server.worker_pids()})")
        anon = Client("127.0.0.1", server.port)
        token = anon.json("POST", "/v1/auth/access_token", credentials)["accessToken"]
        client = Client("127.0.0.1", server.port, token=token)
        meter = CpuMeter(server, args.database)

        if not needs_catalog:
            log("synthetic catalog not needed by --only " + ",".join(args.only))
        elif reuse:
            results["ingest"] = {"skipped": "--keep reused a loaded database"}
        else:
            create_blueprints(client)
            log("sort indexes of indexed properties: " + manage(env, "entity_indexes_sync").strip())  # the worker's job
            log(f"loading {args.entities:,} entities: " + ", ".join(f"{bp} {n:,}" for bp, n in counts.items()))
            with meter:
                results["ingest"] = load_catalog(client, counts, args)
            results["ingest"].update(meter.result)
            per_entity = (meter.result["cpu_workers_s"] + meter.result["cpu_postgres_s"]) * 1000 / max(results["ingest"]["loaded"], 1)
            results["ingest"]["idle_ceiling_entities_per_s"] = _ceiling(per_entity)
            if not args.no_analyze:
                log("VACUUM ANALYZE (what autovacuum would do shortly after a load)")
                vacuum_analyze(bench_url)

        if "search" in parts:
            measure_searches(client, bench_url, counts, args, meter, results)
        if "upsert" in parts:
            log("single upsert")
            results["upsert"] = per_request_cpu(measure_upsert(client, counts, args, meter)).summary()
        if "get" in parts:
            log(f"GET by identifier at concurrency {args.concurrency}")
            results["get"] = per_request_cpu(measure_get(client, counts, args, meter)).summary()
            log(f"GET by identifier through the bare view at concurrency {args.concurrency}")
            results["get_bare"] = per_request_cpu(measure_bare_get(client, counts, args, meter)).summary()
        if "pages" in parts:
            log(f"catalog table pages of {pages.BLUEPRINT}, concurrency 1, as an admin and as a member")
            results["pages"] = pages.measure(server.port, env, args, meter, log=log,
                                             summarize=lambda sample: per_request_cpu(sample).summary())
        if parts & {"locks", "deployments"}:
            log("starter catalog and bench services for the lock check and deployment reports")
            log("  " + deploys.seed(client, env))
        if "locks" in parts:
            log(f"lock check at concurrency {deploys.LOCK_CONCURRENCY}: API, then the bare view")
            disagree = deploys.check_answers(client)
            api = per_request_cpu(deploys.measure_lock_route(client, "/v1/locks", args, meter)).summary()
            bare = per_request_cpu(deploys.measure_lock_route(client, "/bench/bare-lock", args, meter)).summary()
            results["locks"] = {**deploys.lock_result(api, bare, disagree), "catalog_entities": entity_count(bench_url)}
        if "deployments" in parts:
            worker = CeleryWorker(server_env, log_path=portal_home() / "log" / "bench-celery.log").start()
            try:
                log(f"{args.deploy_requests} deployment reports, sequential, with a Celery worker doing what they hand over")
                began, worker_cpu = datetime.now(timezone.utc), worker.cpu_seconds()
                results["deployments"] = per_request_cpu(deploys.measure_deployments(client, args, meter)).summary()
                waited, pending, failed = outbox_drained(bench_url, began, timeout=300)
                results["deployments"]["after_commit"] = {
                    "drained_s": waited, "pending": pending, "failed": failed,
                    "worker_cpu_ms_per_req": round((worker.cpu_seconds() - worker_cpu) * 1000
                                                   / max(results["deployments"]["requests"], 1), 1),
                    "aggregates_stale": deploys.aggregates_stale(env)}
            finally:
                worker.stop()
            log(f"{args.deploy_requests} bare writes (one INSERT), sequential")
            deploys.bare_write_table(bench_url)
            results["deployments_bare"] = per_request_cpu(deploys.measure_bare_write(client, args, meter)).summary()
            log("SQL statements of one deployment report, in-process")
            try:
                results["deployment_statements"] = deploys.report_statements(env)
            except Exception as exc:  # noqa: BLE001 - reported; the ratio shows as not measured
                results["deployment_statements"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        if "contention" in parts:
            log(f"{args.contention_requests} overlapping upserts from {contention.CONCURRENCY} clients")
            contention.seed(client)
            results["contention"] = per_request_cpu(contention.measure(client, args, meter)).summary()
        if "scorecards" in parts:
            log(f"scorecards on {scorecards.BLUEPRINT} ({counts[scorecards.BLUEPRINT]:,} entities)")
            results["scorecards"] = scorecards.measure(
                client, counts, args, meter, log=log,
                upsert=lambda name, offset: per_request_cpu(measure_upsert(
                    client, counts, args, meter, requests=args.upsert_requests, offset=offset, name=name)).summary())
        if "backstage" in parts:
            log(f"Backstage import of {args.backstage_descriptors:,} generated descriptors through a file location")
            slow = Client("127.0.0.1", server.port, token=token, timeout=900)  # the refresh answers when all is written
            results["backstage"] = backstage.measure(slow, portal_home() / "bench-backstage", args.backstage_descriptors,
                                                     log=log)
        results["workers"] = [{k: (round(v, 1) if isinstance(v, float) else v) for k, v in w.items()}
                              for w in server.worker_stats()]
    finally:
        server.stop()
        if args.drop:
            database_drop(base_url, args.database)
    results["client_cpu_s"] = round(time.process_time() - cpu_start, 1)
    results["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["ratios"] = ratios.ratios(results)
    print(report(results), flush=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    kept = "" if args.drop else f"; database {args.database} kept (--keep reuses it, --drop drops it)"
    log(f"results written to {output}{kept}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # gunicorn is already stopped by main's finally
        log("interrupted")
        sys.exit(130)
