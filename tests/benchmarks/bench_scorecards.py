"""Issue 15's scorecard benchmark: five scorecards on the biggest blueprint (Deployment), through the API.

Targets: (1) a scorecard edit over 100,000 entities re-evaluates in under 60 s; (2) an entity write's p95 grows by
at most 20% with five scorecards defined. Steps, on the loaded synthetic catalog:

    A1  single-upsert p50/p95 on Deployment, no scorecards
    PUT the five scorecards (`PUT /v1/blueprints/Deployment/scorecards`: every Deployment evaluated)   timed
    B1  the same upserts, five scorecards
    PUT []  (scorecards dropped, standings deleted)
    A2  upserts, no scorecards
    PUT the five again                                                                                  timed
    B2  upserts, five scorecards
    edit one scorecard (`PUT .../scorecards/reliability`: a Silver rule loosened, ~30% change level)  timed
    GET sampled entities: their `scorecards` levels against the levels worked out here from bench_catalog

The rounds alternate so that a shared machine's noise shows as a difference between A1 and A2 (B1 and B2); the
growth is judged on the medians of the rounds' p95. The rules read properties, `$title`, `$team`, `$identifier` and
the `service` relation; every rule is also a Python predicate over bench_catalog's entity JSON, so the sampled
levels are checked against what the rules say, not against what the server answered before. Only fields an upsert
leaves alone (bench_catalog's `version_bump` changes `version` and the title's version) are read by the predicates.
"""
import json
import statistics
from datetime import timedelta

import bench_catalog as catalog
from bench_http import Client, HttpError

BLUEPRINT = "Deployment"
TARGET_ENTITIES = 100_000
TARGETS = {"edit_s": 60, "upsert_p95_growth_pct": 20}
ROUNDS = 2
SAMPLES = 40  # entities whose levels are checked after the edit
LEVELS = [level["title"] for level in ({"title": "Basic"}, {"title": "Bronze"}, {"title": "Silver"}, {"title": "Gold"})]


def _days_before_epoch(days):
    return catalog.iso(catalog.EPOCH - timedelta(days=days))


def _rule(identifier, level, *conditions):
    """(rule JSON, predicate over the entity JSON): the predicate is the conditions' `and`, worked out in Python."""
    return ({"identifier": identifier, "title": identifier, "level": level,
             "query": {"combinator": "and", "conditions": [c for c, _ in conditions]}},
            lambda entity: all(predicate(entity) for _, predicate in conditions))


def _prop(name, operator, value, predicate):
    condition = {"property": name, "operator": operator, **({} if value is None else {"value": value})}
    return condition, lambda e: predicate(e["properties"].get(name))


def _meta(name, operator, value=None, *, predicate):
    condition = {"property": name, "operator": operator}
    if value is not None:
        condition["value"] = value
    return condition, predicate


SERVICE_SET = ({"property": "service", "operator": "isNotEmpty"}, lambda e: bool(e["relations"].get("service")))
TITLED = _meta("$title", "isNotEmpty", predicate=lambda e: bool(e["title"]))
OWNED = _meta("$team", "isNotEmpty", predicate=lambda e: bool(e.get("team")))  # the bench catalog sets no teams
RECENT_270, RECENT_180, RECENT_90 = (_days_before_epoch(d) for d in (270, 180, 90))


def _reliability(silver_seconds):
    return [
        _rule("succeeded", "Bronze", _prop("status", "in", ["success", "running"], lambda v: v in ("success", "running"))),
        _rule("hasService", "Bronze", SERVICE_SET),
        _rule("quick", "Silver", _prop("durationSeconds", "<=", silver_seconds, lambda v: v <= silver_seconds)),
        _rule("notProxy", "Silver", _meta("$title", "doesNotContain", "Proxy",
                                          predicate=lambda e: "PROXY" not in e["title"].upper())),
        _rule("clean", "Gold", _prop("status", "=", "success", lambda v: v == "success"),
              _prop("durationSeconds", "<=", 300, lambda v: v <= 300)),
    ]


def scorecards(*, reliability_silver_seconds=900):
    """[(scorecard JSON, filter predicate or None, {rule identifier: predicate})] — the five scorecards of the run;
    `reliability_silver_seconds` is what the edit changes (900 -> 1,500)."""
    definitions = [
        ("reliability", "Deployment reliability", None, _reliability(reliability_silver_seconds)),
        ("productionReadiness", "Production readiness",
         _prop("environment", "in", ["production", "staging"], lambda v: v in ("production", "staging")), [
             _rule("titled", "Bronze", TITLED, SERVICE_SET),
             _rule("notFailed", "Silver", _prop("status", "!=", "failed", lambda v: v != "failed")),
             _rule("inProduction", "Silver", _prop("environment", "=", "production", lambda v: v == "production")),
             _rule("owned", "Gold", OWNED),
         ]),
        ("freshness", "Freshness", None, [
            _rule("thisYear", "Bronze", _prop("deployedAt", ">", RECENT_270, lambda v: v > RECENT_270)),
            _rule("lastHalf", "Silver", _prop("deployedAt", ">", RECENT_180, lambda v: v > RECENT_180)),
            _rule("lastQuarter", "Gold", _prop("deployedAt", ">", RECENT_90, lambda v: v > RECENT_90),
                  _prop("version", "isNotEmpty", None, bool)),
        ]),
        ("ownership", "Ownership", None, [
            _rule("hasService", "Bronze", SERVICE_SET),
            _rule("named", "Bronze", _meta("$identifier", "beginsWith", "dep-",
                                           predicate=lambda e: e["identifier"].upper().startswith("DEP-"))),
            _rule("owned", "Silver", OWNED),
            _rule("titled", "Gold", TITLED),
        ]),
        ("speed", "Deployment speed", None, [
            _rule("under25m", "Bronze", _prop("durationSeconds", "<", 1500, lambda v: v < 1500)),
            _rule("under15m", "Silver", _prop("durationSeconds", "<", 900, lambda v: v < 900)),
            _rule("notDevelopment", "Silver", _prop("environment", "!=", "development", lambda v: v != "development")),
            _rule("under5m", "Gold", _prop("durationSeconds", "<", 300, lambda v: v < 300)),
            _rule("notProxy", "Gold", _meta("$title", "doesNotContain", "proxy",
                                            predicate=lambda e: "PROXY" not in e["title"].upper())),
        ]),
    ]
    out = []
    for identifier, title, scope, rules in definitions:
        body = {"identifier": identifier, "title": title, "rules": [rule for rule, _ in rules]}
        if scope is not None:
            body["filter"] = {"combinator": "and", "conditions": [scope[0]]}
        out.append((body, scope[1] if scope else None, {rule["identifier"]: p for rule, p in rules}))
    return out


def expected_levels(entity, cards):
    """{scorecard: level} the rules give `entity` (bench_catalog JSON); scorecards whose filter leaves it out absent."""
    levels = {}
    for body, scope, predicates in cards:
        if scope is not None and not scope(entity):
            continue
        failing = {rule["level"] for rule in body["rules"] if not predicates[rule["identifier"]](entity)}
        reached = LEVELS[0]
        for level in LEVELS[1:]:
            if level in failing:
                break
            reached = level
        levels[body["identifier"]] = reached
    return levels


def _timed(client, method, path, body, expect=200):
    status, data, elapsed = client.request(method, path, body)
    if status != expect:
        raise HttpError(f"{method} {path} -> {status}: {data[:500]!r}")
    return elapsed


def _changed_by_edit(counts, before, after, sample=2000):
    """Share of a deterministic sample of Deployments whose reliability level the edit moves (from the predicates)."""
    n = counts[BLUEPRINT]
    step = max(1, n // sample)
    indexes = range(0, n, step)
    moved = sum(expected_levels(catalog.entity(BLUEPRINT, i, counts), before)["reliability"]
                != expected_levels(catalog.entity(BLUEPRINT, i, counts), after)["reliability"] for i in indexes)
    return round(moved * 100 / len(indexes), 1)


def check_levels(client, counts, cards, samples=SAMPLES):
    """GET `samples` Deployments spread over the blueprint and compare their `scorecards` levels with the rules'."""
    n = counts[BLUEPRINT]
    agree, notes = 0, []
    for k in range(samples):
        index = (k * 104729 + 17) % n
        entity = catalog.entity(BLUEPRINT, index, counts)
        body = client.json("GET", f"/v1/blueprints/{BLUEPRINT}/entities/{entity['identifier']}")
        got = {sc: standing.get("level") for sc, standing in (body["entity"].get("scorecards") or {}).items()}
        want = expected_levels(entity, cards)
        if got == want:
            agree += 1
        else:
            notes.append(f"{entity['identifier']}: API {json.dumps(got, sort_keys=True)} vs rules "
                         f"{json.dumps(want, sort_keys=True)}")
    return {"agree": agree, "checked": samples, "notes": notes[:3]}


def _steps(slow, client, counts, args, meter, *, upsert, log, result):
    path = f"/v1/blueprints/{BLUEPRINT}/scorecards"
    entities = counts[BLUEPRINT]
    cards, edited = scorecards(), scorecards(reliability_silver_seconds=1500)
    bodies = [body for body, _, _ in cards]
    for round_no in range(1, ROUNDS + 1):
        offset = round_no * 100_000
        log(f"  round {round_no}: {args.upsert_requests} upserts without scorecards")
        without = upsert(f"upsert, no scorecards, round {round_no}", offset)
        log(f"  round {round_no}: PUT {len(bodies)} scorecards ({result['rules']} rules) over {entities:,} {BLUEPRINT}s")
        with meter:
            seconds = _timed(slow, "PUT", path, bodies)
        result["define"].append({"seconds": round(seconds, 2), "entities_per_s": round(entities / seconds, 1),
                                 **meter.result})
        log(f"    {seconds:.1f} s")
        log(f"  round {round_no}: {args.upsert_requests} upserts with {len(bodies)} scorecards")
        scored = upsert(f"upsert, {len(bodies)} scorecards, round {round_no}", offset + 50_000)
        result["rounds"].append({"without": without, "with": scored})
        if round_no < ROUNDS:
            _timed(slow, "PUT", path, [])

    log("  edit: PUT of one scorecard (reliability: Silver's duration rule 900 s -> 1,500 s)")
    result["edit_changes_pct"] = _changed_by_edit(counts, cards, edited)
    with meter:
        seconds = _timed(slow, "PUT", f"{path}/reliability", edited[0][0])
    result["edit"] = {"seconds": round(seconds, 2), "entities_per_s": round(entities / seconds, 1), **meter.result}
    result["edit_seconds_at_100k"] = round(seconds * TARGET_ENTITIES / entities, 2)  # linear, when not measured there
    log(f"    {seconds:.1f} s; checking {SAMPLES} entities' levels")
    result["levels_check"] = check_levels(client, counts, edited)


def measure(client, counts, args, meter, *, upsert, log):
    """Run the steps above. `upsert(name, offset)` measures single upserts of Deployments (run.py's measure_upsert
    with per-request CPU) and returns its summary; `offset` keeps each round's bodies new."""
    # The PUTs evaluate the whole blueprint in one request: a client of their own with a longer time limit.
    slow = Client(client.host, client.port, token=client.token, timeout=args.scorecard_timeout)
    path = f"/v1/blueprints/{BLUEPRINT}/scorecards"
    result = {"blueprint": BLUEPRINT, "entities": counts[BLUEPRINT], "scorecards": len(scorecards()),
              "rules": sum(len(body["rules"]) for body, _, _ in scorecards()), "rounds": [], "define": [],
              "targets": TARGETS}
    _timed(slow, "PUT", path, [])  # a kept database may still hold them from an earlier run
    try:
        _steps(slow, client, counts, args, meter, upsert=upsert, log=log, result=result)
    finally:  # a kept database goes back to no scorecards, so the other parts measure what they always did
        _timed(slow, "PUT", path, [])
    for key in ("without", "with"):  # CPU per upsert, web + PostgreSQL: steadier than latency on a shared machine
        result[f"upsert_cpu_ms_{key}"] = round(statistics.median(
            r[key].get("worker_cpu_ms_per_req", 0) + r[key].get("pg_cpu_ms_per_req", 0) for r in result["rounds"]), 2)
    p95_without = statistics.median(r["without"]["p95_ms"] for r in result["rounds"])
    p95_with = statistics.median(r["with"]["p95_ms"] for r in result["rounds"])
    result["upsert_p95_without_ms"], result["upsert_p95_with_ms"] = round(p95_without, 2), round(p95_with, 2)
    result["upsert_p95_growth_pct"] = round((p95_with / p95_without - 1) * 100, 1) if p95_without else None
    return result


def _verdict(ok):
    return "ok" if ok else "MISSED"


def _cpu(row):
    parts = []
    if row.get("cpu_workers_s") is not None:
        # A request longer than CONN_MAX_AGE (60 s) closes its connection at the end: its backend is gone before
        # the meter's last look, and its CPU with it.
        pg = f"{row['cpu_postgres_s']:.1f} s" if row.get("cpu_postgres_s") else "not seen (backend gone)"
        parts.append(f"cpu web {row['cpu_workers_s']:.1f} s, pg {pg}")
    if row.get("others_busy_pct") is not None:
        parts.append(f"others {row['others_busy_pct']:.0f}% busy")
    return f" ({'; '.join(parts)})" if parts else ""


def report_lines(result):
    if not result:
        return []
    n = result["entities"]
    at_target = n >= TARGET_ENTITIES
    lines = [f"scorecards on {result['blueprint']} ({n:,} entities; {result['scorecards']} scorecards, "
             f"{result['rules']} rules; issue 15):"]
    for i, row in enumerate(result["define"], 1):
        lines.append(f"    define {result['scorecards']} scorecards (PUT list, every entity evaluated), round {i}: "
                     f"{row['seconds']:.1f} s = {row['entities_per_s']:,.0f} entities/s{_cpu(row)}")
    edit = result["edit"]
    verdict = (_verdict(edit["seconds"] < TARGETS["edit_s"]) if at_target else
               f"not judged here, {result['edit_seconds_at_100k']:.1f} s at 100,000 if linear; --entities 166667 gives "
               f"{TARGET_ENTITIES:,} {result['blueprint']}s")
    lines.append(f"    edit one scorecard (PUT one, {result['edit_changes_pct']:.0f}% of entities change level): "
                 f"{edit['seconds']:.1f} s = {edit['entities_per_s']:,.0f} entities/s{_cpu(edit)}  "
                 f"[target < {TARGETS['edit_s']} s at {TARGET_ENTITIES:,} entities: {verdict}]")
    check = result["levels_check"]
    lines.append(f"    levels after the edit, GET of sampled entities vs the rules: {check['agree']}/{check['checked']} agree "
                 f"[{_verdict(check['agree'] == check['checked'])}]"
                 + "".join(f"\n        {note}" for note in check["notes"]))
    for i, row in enumerate(result["rounds"], 1):
        for label, key in (("no scorecards,", "without"), (f"{result['scorecards']} scorecards,", "with")):
            s = row[key]
            lines.append(f"    upsert, {label:14} round {i}: p50 {s['p50_ms']:.1f} ms, p95 {s['p95_ms']:.1f} ms, "
                         f"mean {s['mean_ms']:.1f} ms ({s['requests']} requests; cpu/req web "
                         f"{s.get('worker_cpu_ms_per_req', 0):.1f} ms, pg {s.get('pg_cpu_ms_per_req', 0):.1f} ms; "
                         f"others {s.get('others_busy_pct', 0):.0f}% busy)"
                         + (f"  errors={s['errors']} ({s.get('first_error')})" if s["errors"] else ""))
    growth = result["upsert_p95_growth_pct"]
    cpu_without, cpu_with = result["upsert_cpu_ms_without"], result["upsert_cpu_ms_with"]
    lines.append(f"    upsert p95 (median of rounds) {result['upsert_p95_without_ms']:.1f} -> {result['upsert_p95_with_ms']:.1f} ms"
                 f" = {'-' if growth is None else format(growth, '+.1f')}%  [target <= +{TARGETS['upsert_p95_growth_pct']}%: "
                 f"{_verdict(growth is not None and growth <= TARGETS['upsert_p95_growth_pct'])}]; cpu/upsert web+pg "
                 f"{cpu_without:.1f} -> {cpu_with:.1f} ms"
                 + (f" = {(cpu_with / cpu_without - 1) * 100:+.1f}%" if cpu_without else ""))
    return lines
