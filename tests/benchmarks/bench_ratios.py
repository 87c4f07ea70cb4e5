"""Issue 16's ratios: each figure next to a reference measured in the same run on the same machine.

`ratios(results)` builds the `ratios` block of bench-results.json from the other parts' results (a pure function:
no Django, no database); `report_lines(ratios)` prints it. A ratio whose parts did not run has value None and
ok false. Keys, what they divide and their targets:

- get_vs_bare: GET by identifier req/s / the bare single-row lookup view's req/s, same concurrency (>= 0.5);
- search_vs_sql: the worst of the search shapes' API p50 / raw SQL p50 (<= 3);
- deploy_vs_bare: deployment report req/s / the bare one-INSERT write view's req/s, sequential (>= 0.2);
- deploy_statements: SQL statements of one report on the plain deployment blueprints (<= 12);
- lock_p99_vs_bare: lock check p99 / the bare lock view's p99 at 16 clients (<= 1.5);
- sorted_page_vs_first: catalog table page sorted by a property p50 / first page p50, the worse of admin and
  member (<= 1.5).
"""
import math

# key: (comparison, target, what it divides)
TARGETS = {
    "get_vs_bare": (">=", 0.5, "GET by identifier req/s / bare lookup view req/s"),
    "search_vs_sql": ("<=", 3, "search API p50 / raw SQL p50, worst of the shapes"),
    "deploy_vs_bare": (">=", 0.2, "deployment report req/s / bare INSERT view req/s"),
    "deploy_statements": ("<=", 12, "SQL statements of one report, plain blueprints"),
    "lock_p99_vs_bare": ("<=", 1.5, "lock check p99 / bare lock view p99, 16 clients"),
    "sorted_page_vs_first": ("<=", 1.5, "sorted catalog page p50 / first page p50, worse user"),
}


def _number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _divide(numerator, denominator):
    numerator, denominator = _number(numerator), _number(denominator)
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def _get(results, *keys):
    for key in keys:
        if not isinstance(results, dict):
            return None
        results = results.get(key)
    return results


def _worst(values, pick):
    values = [v for v in values if v is not None]
    return pick(values) if values else None


def ratio_values(results):
    """{key: value or None} from a bench results dict."""
    search = results.get("search") or {}
    pages_users = _get(results, "pages", "users") or {}
    return {
        "get_vs_bare": _divide(_get(results, "get", "req_per_s"), _get(results, "get_bare", "req_per_s")),
        "search_vs_sql": _worst([_number(row.get("ratio_p50")) for row in search.values()], max),
        "deploy_vs_bare": _divide(_get(results, "deployments", "req_per_s"),
                                  _get(results, "deployments_bare", "req_per_s")),
        "deploy_statements": _number(_get(results, "deployment_statements", "plain")),
        "lock_p99_vs_bare": _divide(_get(results, "locks", "api", "p99_ms"), _get(results, "locks", "bare", "p99_ms")),
        "sorted_page_vs_first": _worst([_divide(_get(cases, "sorted", "p50_ms"), _get(cases, "first", "p50_ms"))
                                        for cases in pages_users.values()], max),
    }


def ratios(results):
    """The `ratios` block: {key: {"value": v, "target": t, "ok": bool}} for every key of TARGETS. The verdict is
    the unrounded ratio's (0.198 misses 0.2); `value` is rounded to three decimals for the report."""
    block = {}
    for key, value in ratio_values(results).items():
        comparison, target, _ = TARGETS[key]
        ok = value is not None and (value >= target if comparison == ">=" else value <= target)
        block[key] = {"value": None if value is None else round(value, 3), "target": target, "ok": ok}
    return block


def report_lines(block):
    lines = ["issue 16 ratios (each against a reference measured in this run):"]
    for key, (comparison, target, meaning) in TARGETS.items():
        row = block.get(key) or {"value": None, "ok": False}
        value = "not measured" if row["value"] is None else f"{row['value']:g}"
        lines.append(f"    {key:22} {value:>12}  target {comparison} {target:<4} {'ok' if row['ok'] else 'MISSED':7}"
                     f"  ({meaning})")
    return lines
