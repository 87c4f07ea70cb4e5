"""CI's two calls against the starter catalog: the lock check and the deployment report.

- `GET /v1/locks/{service}/{environment}` throughput and p50/p99 at 16 concurrent clients, next to the bare
  view of bench_urls.py running the same single query (LOCKS_SQL) with no DRF/auth: the ratio API/bare of
  their throughputs says what the API layers cost on top of the query.
- `POST /v1/deployments` p50/p95, sequential (concurrency 1), round-robin over the bench services and the
  starter catalog's three environments.

Seeding: a minimal `Component` blueprint and the bench services go in through the API first, so that
`manage.py load_starter` finds `Component` and loads only the starter blueprints (environment,
runningService, deployment, devEnvironment) and environments; loading the founding example catalog would
rewrite the synthetic catalog's Domain/System/Resource blueprints. One report per service and environment
then creates every running service, so each lock check finds both rows of its query.
"""
import hashlib

from bench_http import HttpError, run_loop
from bench_server import manage

SERVICES = [f"bench-svc-{i:02d}" for i in range(6)]
ENVIRONMENTS = ["production", "staging", "development"]  # the starter catalog's (catalog/fixtures/starter-catalog.json)
# `type`: the starter's Production readiness scorecard filters on it (load_starter refuses the scorecard without it).
COMPONENT = {"identifier": "Component", "title": "Component", "icon": "Service",
             "schema": {"properties": {"type": {"type": "string"}}, "required": []}, "relations": {}}
LOCK_CONCURRENCY = 16
DEPLOY_DURATION_FACTOR = 4  # a report costs ~10x a lock check: its loop gets 4x --duration to reach its count


def seed(client, env):
    status, data, _ = client.request("POST", "/v1/blueprints", COMPONENT)
    if status not in (201, 409):  # 409: a kept database has it already
        raise HttpError(f"POST /v1/blueprints Component -> {status}: {data[:300]!r}")
    client.json("POST", "/v1/blueprints/Component/entities/bulk?upsert=true",
                {"entities": [{"identifier": name, "title": name} for name in SERVICES]}, expect=(200, 207))
    output = manage(env, "load_starter").strip()
    for i, (service, environment) in enumerate((s, e) for s in SERVICES for e in ENVIRONMENTS):
        client.json("POST", "/v1/deployments", report_body(service, environment, f"0.0.{i}"), expect=(201,))
    return output


def report_body(service, environment, version):
    return {"service": service, "environment": environment, "version": version,
            "commitSha": hashlib.sha1(version.encode()).hexdigest(), "jobUrl": f"https://ci.example.com/jobs/{version}"}


def pair(i):
    """(service, environment) for request i: every service in every environment, in turn."""
    return SERVICES[i % len(SERVICES)], ENVIRONMENTS[(i // len(SERVICES)) % len(ENVIRONMENTS)]


def check_answers(client):
    """The API and the bare view answer alike (status and `locked`) for every pair and an unknown environment."""
    disagree = []
    for service, environment in [pair(i) for i in range(len(SERVICES) * len(ENVIRONMENTS))] + [(SERVICES[0], "moon")]:
        answers = []
        for prefix in ("/v1/locks", "/bench/bare-lock"):
            status, data, _ = client.request("GET", f"{prefix}/{service}/{environment}")
            answers.append((status, data[:200]))
        (api_status, api_body), (bare_status, bare_body) = answers
        if api_status != bare_status or (api_status == 200 and b'"locked":false' not in bare_body.replace(b" ", b"")):
            disagree.append(f"{service}/{environment}: API {api_status} {api_body!r}, bare {bare_status} {bare_body!r}")
    return disagree


def measure_lock_route(client, prefix, args, meter):
    def call(i):
        service, environment = pair(i)
        status, data, elapsed = client.request("GET", f"{prefix}/{service}/{environment}")
        if status != 200:
            raise HttpError(f"{status}: {data[:200]!r}")
        return elapsed

    return run_loop(f"GET {prefix}", call, requests=args.lock_requests, seconds=args.duration,
                    concurrency=LOCK_CONCURRENCY, warmup=args.warmup, meter=meter)


def lock_result(api, bare, disagree):
    ratio = round(api["req_per_s"] / bare["req_per_s"], 2) if bare["req_per_s"] else None
    return {"api": api, "bare": bare, "ratio": ratio, "disagree": disagree, "concurrency": LOCK_CONCURRENCY,
            "services": len(SERVICES), "environments": len(ENVIRONMENTS)}


def measure_deployments(client, args, meter):
    def call(i):
        service, environment = pair(i)
        version = f"1.{i}.0" if i >= 0 else f"0.9.{-i}"  # warm-up calls have negative indices
        status, data, elapsed = client.request("POST", "/v1/deployments", report_body(service, environment, version))
        if status != 201:
            raise HttpError(f"{status}: {data[:200]!r}")
        return elapsed

    return run_loop("POST /v1/deployments", call, requests=args.deploy_requests, seconds=args.duration * DEPLOY_DURATION_FACTOR,
                    warmup=args.warmup, meter=meter)


def bare_write_table(url):
    """The table of bench_urls.bare_write (one row per report), created as the owner and granted to the app's role."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_bare_write (id bigserial PRIMARY KEY, service text NOT NULL,"
                     " environment text NOT NULL, body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")
        role = conn.execute("SELECT rolname FROM pg_roles WHERE rolname = 'portal_app'").fetchone()
        if role:
            conn.execute("GRANT SELECT, INSERT ON bench_bare_write TO portal_app")
            conn.execute("GRANT USAGE, SELECT ON SEQUENCE bench_bare_write_id_seq TO portal_app")


def measure_bare_write(client, args, meter):
    """POST /bench/bare-write with the report's body, sequential, as measure_deployments: the deployment's floor."""
    def call(i):
        service, environment = pair(i)
        status, data, elapsed = client.request("POST", "/bench/bare-write", report_body(service, environment, f"1.{i}.0"))
        if status != 201:
            raise HttpError(f"{status}: {data[:200]!r}")
        return elapsed

    return run_loop("POST /bench/bare-write", call, requests=args.deploy_requests,
                    seconds=args.duration * DEPLOY_DURATION_FACTOR, warmup=args.warmup, meter=meter)


def aggregates_stale(env):
    """The bench services whose stored Component aggregation values differ from those computed now, once the work
    the reports handed over is done: ["service: stored … != now …"], empty when every value is current."""
    from bench_pages import django_setup

    django_setup(env)
    from django.db import connections

    from catalog.models import Blueprint, Entity
    from catalog.selectors.aggregations import aggregation_values

    try:
        component = Blueprint.objects.get(identifier="Component")
        stored = dict(Entity.objects.filter(blueprint=component, identifier__in=SERVICES).values_list("pk", "aggregates"))
        names = dict(Entity.objects.filter(pk__in=list(stored)).values_list("pk", "identifier"))
        now = aggregation_values(component, list(stored))
        return [f"{names[pk]}: stored {stored[pk]} != now {now[pk]}" for pk in sorted(stored) if stored[pk] != now[pk]]
    finally:
        connections.close_all()


def report_statements(env, *, tries=3):
    """SQL statements of one deployment report (`deployment_record`, in-process on the bench database, the fewest of
    `tries` updates of an existing running service; savepoints left out): {"aggregated": n, "plain": n}.
    `aggregated` on the catalog as seeded (the starter's Component aggregates its deployments); `plain` with no
    blueprint aggregated by another (`aggregated_by` emptied inside a transaction that is rolled back) — the case
    tests/catalog/test_deployment_statements.py bounds by 12, and the one the `deploy_statements` ratio reads."""
    from bench_pages import django_setup

    django_setup(env)
    from django.db import connection, connections, transaction
    from django.test.utils import CaptureQueriesContext

    from catalog.models import Blueprint
    from catalog.services.deployments import deployment_record
    from catalog.services.users import user_ensure
    from portal.actor import Actor

    def fewest(label):
        counts = []
        for attempt in range(tries):
            service, environment = pair(attempt)
            with CaptureQueriesContext(connection) as captured:
                deployment_record(actor=actor, data=report_body(service, environment, f"9.{label}.{attempt}"))
            counts.append(sum(1 for q in captured.captured_queries
                              if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))))
        return min(counts)

    try:
        actor = Actor(user=user_ensure(actor=Actor.system(), email="bench-deployments@example.com", admin=True))
        result = {"aggregated": fewest(0)}
        component = Blueprint.objects.get(identifier="Component")
        result["component_aggregations"] = sorted(component.aggregation_properties or {})
        with transaction.atomic():
            # Nothing aggregates the deployment blueprints any more: their `aggregated_by` emptied, which the services
            # keep and every entity write reads. Written directly, not through blueprint_update: the starter's
            # scorecards and initiative on Component read its aggregations, so the service would refuse, and
            # this is a measurement rolled back below, not a change of the catalog.
            Blueprint.objects.update(aggregated_by=[])
            result["plain"] = fewest(1)
            transaction.set_rollback(True)
        return result
    finally:
        connections.close_all()
