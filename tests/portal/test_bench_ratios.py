"""`make bench`'s `ratios` block (issue 16) is built from a results dict by a pure function,
tests/benchmarks/bench_ratios.py: every key present with value, target and verdict, the worst search shape and
the worse user's sorted page taken, and a part that did not run reported as not measured, never as met."""
import importlib.util
from pathlib import Path

import pytest

BENCH_RATIOS = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_ratios.py"
KEYS = {"get_vs_bare", "search_vs_sql", "deploy_vs_bare", "deploy_statements", "lock_p99_vs_bare", "sorted_page_vs_first"}


@pytest.fixture(scope="module")
def bench_ratios():
    """Loaded from its file: tests/benchmarks is the bench's script directory, not a package (pytest ignores it)."""
    spec = importlib.util.spec_from_file_location("bench_ratios", BENCH_RATIOS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def full_results(**overrides):
    results = {
        "get": {"req_per_s": 300.0}, "get_bare": {"req_per_s": 500.0},
        "search": {"equality": {"ratio_p50": 2.1}, "between": {"ratio_p50": 3.4}, "related": {"ratio_p50": 1.2},
                   "contains": {"ratio_p50": None}},
        "deployments": {"req_per_s": 40.0}, "deployments_bare": {"req_per_s": 400.0},
        "deployment_statements": {"plain": 9, "aggregated": 24},
        "locks": {"api": {"p99_ms": 60.0}, "bare": {"p99_ms": 50.0}},
        "pages": {"users": {"admin": {"first": {"p50_ms": 20.0}, "sorted": {"p50_ms": 24.0}},
                            "member": {"first": {"p50_ms": 20.0}, "sorted": {"p50_ms": 40.0}}}},
    }
    results.update(overrides)
    return results


def test_every_ratio_is_built_with_its_target_and_verdict(bench_ratios):
    block = bench_ratios.ratios(full_results())
    assert block == {
        "get_vs_bare": {"value": 0.6, "target": 0.5, "ok": True},
        "search_vs_sql": {"value": 3.4, "target": 3, "ok": False},  # the worst shape, an unmeasured one skipped
        "deploy_vs_bare": {"value": 0.1, "target": 0.2, "ok": False},
        "deploy_statements": {"value": 9, "target": 12, "ok": True},  # the plain case, not the aggregated one
        "lock_p99_vs_bare": {"value": 1.2, "target": 1.5, "ok": True},
        "sorted_page_vs_first": {"value": 2.0, "target": 1.5, "ok": False},  # the member's, the worse of the two
    }


def test_a_value_on_its_target_meets_it(bench_ratios):
    block = bench_ratios.ratios(full_results(get={"req_per_s": 250.0}, deployment_statements={"plain": 12},
                                             locks={"api": {"p99_ms": 75.0}, "bare": {"p99_ms": 50.0}}))
    assert [block[key]["ok"] for key in ("get_vs_bare", "deploy_statements", "lock_p99_vs_bare")] == [True, True, True]


def test_a_value_just_short_of_its_target_misses_it(bench_ratios):
    block = bench_ratios.ratios(full_results(deployments={"req_per_s": 105.4}, deployments_bare={"req_per_s": 532.0},
                                             search={"equality": {"ratio_p50": 2.2 / 0.7}}))
    assert block["deploy_vs_bare"] == {"value": 0.198, "target": 0.2, "ok": False}  # not rounded up to 0.2 first
    assert block["search_vs_sql"] == {"value": 3.143, "target": 3, "ok": False}


@pytest.mark.parametrize("missing", ["get_bare", "search", "deployments", "deployment_statements", "locks", "pages"])
def test_a_part_that_did_not_run_is_not_measured_and_not_ok(bench_ratios, missing):
    results = full_results()
    del results[missing]
    block = bench_ratios.ratios(results)
    assert set(block) == KEYS
    unmeasured = {key for key, row in block.items() if row["value"] is None}
    assert unmeasured and all(block[key]["ok"] is False for key in unmeasured)


def test_nothing_measured_gives_every_key_unmeasured(bench_ratios):
    block = bench_ratios.ratios({"get_bare": {"req_per_s": 0.0}, "deployment_statements": {"error": "boom"},
                                 "search": {"equality": {"ratio_p50": float("nan")}}})
    assert block == {key: {"value": None, "target": bench_ratios.TARGETS[key][1], "ok": False} for key in KEYS}


def test_the_report_prints_every_ratio_with_its_verdict(bench_ratios):
    lines = bench_ratios.report_lines(bench_ratios.ratios(full_results(locks=None)))
    text = "\n".join(lines)
    for key in KEYS:
        assert key in text
    assert "lock_p99_vs_bare" in next(line for line in lines if "not measured" in line)
    assert "MISSED" in next(line for line in lines if line.strip().startswith("search_vs_sql"))
