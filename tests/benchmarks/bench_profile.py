#!/usr/bin/env python
"""Where the time of one benchmark request goes, in-process against the loaded bench database.

    .venv/bin/python tests/benchmarks/run.py --entities 5000       # once: loads portal_bench
    .venv/bin/python tests/benchmarks/bench_profile.py get
    .venv/bin/python tests/benchmarks/bench_profile.py relatedTo --explain --entities 100000

For one kind of request (`get`, `upsert`, `bulk` — 20 new entities per request —, `lock` — the CI lock
check —, `deploy` — a deployment report; both need a run with `--only locks` or `deployments` first —, or a
search case: `equality`, `between`, `relatedTo`, `contains`, `relation`) it prints the SQL statements of one request with their
times, the in-process milliseconds per request without and with the profiler, and the profile's top
functions (pyinstrument when it is installed, else cProfile). `--explain` adds EXPLAIN ANALYZE of the
search query the application generates next to the benchmark's hand-written SQL. It goes through
Django's test client (no HTTP, no gunicorn), so the figures are the application's own cost.
`--with-scorecards` defines the scorecards part's five scorecards on Deployment first (an `upsert` then
re-evaluates them), and drops them at the end. `scorecards` instead runs the scorecards part's two whole-blueprint PUTs once each (five scorecards defined on
Deployment, then one edited): per PUT its SQL statements grouped, with their count and time, and its cProfile.
A diagnostic: it uses the application's internals and may need care when they change.
"""
import argparse
import cProfile
import io
import json
import os
import pstats
import secrets
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(ROOT)]

import bench_catalog as catalog  # noqa: E402
import bench_deployments as deploys  # noqa: E402
import bench_queries as queries  # noqa: E402
import bench_scorecards  # noqa: E402
from bench_server import bench_secret_key, database_url_named, redis_url_with_db  # noqa: E402

KINDS = ["get", "upsert", "bulk", "lock", "deploy", "scorecards"] + [case.key for case in queries.CASES]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--entities", type=int, default=5000, help="the size the bench database was loaded with")
    parser.add_argument("--requests", type=int, default=100, help="requests per timing (profiled and not)")
    parser.add_argument("--database", default="portal_bench")
    parser.add_argument("--redis-db", type=int, default=15)
    parser.add_argument("--sort", default="cumulative", help="cProfile sort key (cumulative, tottime, ...)")
    parser.add_argument("--top", type=int, default=40, help="profile lines to print")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the search's SQL (search kinds)")
    parser.add_argument("--with-scorecards", action="store_true",
                        help="define the scorecards part's five scorecards on Deployment first (dropped at the end)")
    return parser.parse_args()


def setup(args):
    from portal.embedded.holders import ensure_embedded_services

    services = ensure_embedded_services()
    base = os.environ.get("DATABASE_URL") or services["DATABASE_URL"]
    os.environ["DATABASE_URL"] = database_url_named(base, args.database)
    os.environ["REDIS_URL"] = redis_url_with_db(os.environ.get("REDIS_URL") or services["REDIS_URL"], args.redis_db)
    os.environ["SECRET_KEY"] = bench_secret_key()
    os.environ["API_RATE_LIMIT"] = str(10**9)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    import django

    django.setup()


def token():
    """A fresh credential for the bench user, exchanged for a token the way clients do."""
    from django.contrib.auth import get_user_model

    from catalog.services.api_clients import api_client_create
    from portal.actor import Actor
    from portal.services.api_clients import access_token_issue

    user = get_user_model().objects.get(email="bench@example.com")
    client, secret = api_client_create(actor=Actor.system(), user=user)
    return access_token_issue(client_id=client.client_id, client_secret=secret)[0]


def request_maker(kind, client, counts):
    run = secrets.token_hex(3)
    cases = {case.key: case for case in queries.CASES}

    def one(i):
        if kind == "get":
            index = (i * 104729) % counts["Deployment"]
            response = client.get(f"/v1/blueprints/Deployment/entities/{catalog.identifier('Deployment', index)}")
        elif kind == "upsert":
            body = catalog.entity("Deployment", (i * 7919) % counts["Deployment"], counts, version_bump=i + 1)
            response = client.post("/v1/blueprints/Deployment/entities?upsert=true", json.dumps(body),
                                   content_type="application/json")
        elif kind == "bulk":
            items = []
            for j in range(20):
                item = catalog.entity("Deployment", (i * 20 + j) % counts["Deployment"], counts)
                item["identifier"] = f"profile-{run}-{i}-{j}"  # new entities: the ingest path
                items.append(item)
            response = client.post("/v1/blueprints/Deployment/entities/bulk?upsert=true",
                                   json.dumps({"entities": items}), content_type="application/json")
        elif kind == "lock":
            service, environment = deploys.pair(i)
            response = client.get(f"/v1/locks/{service}/{environment}")
        elif kind == "deploy":
            service, environment = deploys.pair(i)
            response = client.post("/v1/deployments", json.dumps(deploys.report_body(service, environment, f"9.{i}.{run}")),
                                   content_type="application/json")
        else:
            case = cases[kind]
            response = client.post(queries.search_path(), json.dumps(queries.search_body(case, case.params(i, counts))),
                                   content_type="application/json")
        if response.status_code not in (200, 201):
            raise SystemExit(f"{kind}: {response.status_code} {response.content[:300]!r}")
        return response

    return one


def show_queries(one):
    from django.db import connection

    log = []

    def wrapper(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            log.append((time.perf_counter() - started, sql))

    with connection.execute_wrapper(wrapper):
        one(10**6)
    print(f"{len(log)} SQL statements, {sum(t for t, _ in log) * 1000:.2f} ms waiting on them:")
    for elapsed, sql in log:
        print(f"  {elapsed * 1000:7.2f} ms  {' '.join(sql.split())[:160]}")


def profile(one, args):
    start = 2 * 10**6
    try:
        from pyinstrument import Profiler
    except ImportError:
        Profiler = None
    began = time.perf_counter()
    if Profiler is not None:
        profiler = Profiler()
        profiler.start()
        for i in range(args.requests):
            one(start + i)
        profiler.stop()
        print(f"{(time.perf_counter() - began) / args.requests * 1000:.2f} ms/request under pyinstrument")
        print(profiler.output_text(unicode=False, color=False))
        return
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(args.requests):
        one(start + i)
    profiler.disable()
    print(f"{(time.perf_counter() - began) / args.requests * 1000:.2f} ms/request under cProfile")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(args.sort).print_stats(args.top)
    print(out.getvalue())


def profile_scorecards(client, args):
    """`scorecards`: the scorecards part's two PUTs once each (they evaluate the whole Deployment blueprint): the five
    scorecards defined, then one edited; per PUT the SQL statements grouped by their first 100 characters (count,
    milliseconds) and the cProfile of the request; the scorecards are dropped at the end."""
    from collections import defaultdict

    from django.db import connection

    path = f"/v1/blueprints/{bench_scorecards.BLUEPRINT}/scorecards"
    cards = [body for body, _, _ in bench_scorecards.scorecards()]
    edited = bench_scorecards.scorecards(reliability_silver_seconds=1500)[0][0]

    def put(url, body):
        response = client.put(url, json.dumps(body), content_type="application/json")
        if response.status_code != 200:
            raise SystemExit(f"PUT {url}: {response.status_code} {response.content[:300]!r}")

    put(path, [])
    try:
        for label, url, body in (("define five scorecards", path, cards), ("edit one scorecard", f"{path}/reliability", edited)):
            statements = defaultdict(lambda: [0, 0.0])

            def wrapper(execute, sql, params, many, context):
                started = time.perf_counter()
                try:
                    return execute(sql, params, many, context)
                finally:
                    row = statements[" ".join(sql.split())[:100]]
                    row[0] += 1
                    row[1] += time.perf_counter() - started

            profiler = cProfile.Profile()
            began = time.perf_counter()
            with connection.execute_wrapper(wrapper):
                profiler.enable()
                put(url, body)
                profiler.disable()
            wall = time.perf_counter() - began
            print(f"=== {label}: {wall:.1f} s under cProfile, {sum(n for n, _ in statements.values())} SQL statements, "
                  f"{sum(t for _, t in statements.values()):.1f} s waiting on them; the slowest:")
            for sql, (n, spent) in sorted(statements.items(), key=lambda item: -item[1][1])[:12]:
                print(f"  {spent:7.2f} s  {n:5}x  {sql}")
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(args.sort).print_stats(args.top)
            print(out.getvalue())
    finally:
        put(path, [])


def explain(kind, counts):
    """The application's page statement (catalog/selectors/search_pages.py, a page of 50 as the bench asks) next to
    the hand-written SQL: timings over the same parameter values, then both plans."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from catalog.access import entity_read_rule
    from catalog.models import Blueprint
    from catalog.selectors import search_pages

    case = {c.key: c for c in queries.CASES}[kind]
    user = get_user_model().objects.get(email="bench@example.com")
    blueprint = Blueprint.objects.get(identifier=queries.SEARCH_BLUEPRINT)
    blueprint_ids = dict(Blueprint.objects.values_list("identifier", "id"))

    def application(p):
        condition = search_pages._condition(case.rule(p), user=user, blueprint=blueprint, path="query")
        return search_pages._statement(blueprint, condition, entity_read_rule(user), after=0, limit=queries.PAGE)

    params = case.params(3, counts)
    with connection.cursor() as cursor:
        timings = {"application": [], "hand-written": []}
        for i in range(60):  # both statements over the same 60 parameter values, warm
            p = case.params(i, counts)
            for label, (sql, values) in (("application", application(p)), ("hand-written", case.sql(p, blueprint_ids))):
                started = time.perf_counter()
                cursor.execute(sql, values)
                cursor.fetchall()
                if i >= 10:
                    timings[label].append(time.perf_counter() - started)
        for label, values in timings.items():
            values.sort()
            print(f"{label:>12} SQL alone: p50 {values[len(values) // 2] * 1000:.2f} ms, "
                  f"p95 {values[int(len(values) * 0.95)] * 1000:.2f} ms (50 parameter values, fetch included)")
        for label, (sql, values) in (("application", application(params)), ("hand-written", case.sql(params, blueprint_ids))):
            for _ in range(3):  # warm the cache; print the last
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, values)
                plan = [row[0] for row in cursor.fetchall()]
            print(f"--- EXPLAIN ANALYZE, {label} SQL, {params}:")
            print("\n".join(plan))


def main():
    args = parse_args()
    setup(args)
    from django.test import Client

    counts = catalog.plan(args.entities)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token()}")
    if args.kind == "scorecards":
        profile_scorecards(client, args)
        return
    one = request_maker(args.kind, client, counts)
    if args.with_scorecards:
        scorecards_put(client, [body for body, _, _ in bench_scorecards.scorecards()])
        try:
            measure(one, args, counts)
        finally:
            scorecards_put(client, [])
        return
    measure(one, args, counts)


def scorecards_put(client, bodies):
    path = f"/v1/blueprints/{bench_scorecards.BLUEPRINT}/scorecards"
    response = client.put(path, json.dumps(bodies), content_type="application/json")
    if response.status_code != 200:
        raise SystemExit(f"PUT {path}: {response.status_code} {response.content[:300]!r}")


def measure(one, args, counts):
    for i in range(5):
        one(i)  # warm-up: connections, caches, compiled validators
    show_queries(one)
    began = time.perf_counter()
    for i in range(args.requests):
        one(10**5 + i)
    print(f"{(time.perf_counter() - began) / args.requests * 1000:.2f} ms/request in-process, no profiler")
    profile(one, args)
    if args.explain and args.kind in {case.key for case in queries.CASES}:
        explain(args.kind, counts)


if __name__ == "__main__":
    main()
