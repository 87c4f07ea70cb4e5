"""Tests for portal.jq: sandboxing, time bounds, batch semantics, threads and fork.

Plain pytest (no database, no Django settings needed).
"""

import os
import sys
import threading
import time

import pytest

from portal import jq as pjq
from portal.jq import (
    JqCompileError,
    JqError,
    JqTimeout,
    jq_all,
    jq_compile_check,
    jq_first,
    jq_first_many,
)

SECRET_NAME = "PORTAL_JQ_TEST_SECRET"
SECRET_VALUE = "do-not-leak-7f3a9c"

# Generous bound on how long a timed-out call may take beyond its timeout (it may also have to
# spawn a worker first); the point is that control comes back, not how fast.
SLACK = 1.5


@pytest.fixture(autouse=True)
def _secret_in_environment(monkeypatch):
    monkeypatch.setenv(SECRET_NAME, SECRET_VALUE)


# `.` alone is evaluated in the process (portal/jq_fast.py); through a pipe it is the sandbox's
SANDBOX_IDENTITY = ". | ."


def _warm_worker():
    assert jq_first(SANDBOX_IDENTITY, 1) == 1


# --------------------------------------------------------------------------- basics


def test_basic_evaluation():
    data = {"a": {"b": [1, 2, 3]}, "s": "x"}
    assert jq_first(".a.b[1]", data) == 2
    assert jq_first(".missing", data) is None
    assert jq_first("empty", data) is None
    assert jq_first(".a.b[]", data) == 1
    assert jq_all(".a.b[]", data) == [1, 2, 3]
    assert jq_all("empty", data) == []
    assert jq_first('.s + "y"', data) == "xy"
    assert jq_first("{n: (.a.b | length), t: true, z: null}", data) == {"n": 3, "t": True, "z": None}
    assert jq_first(".", "ünïcødé ✓") == "ünïcødé ✓"
    assert jq_first('"line1\\nline2"', None) == "line1\nline2"
    assert jq_first(".[0] * 1.5", [2]) == 3
    assert jq_first("now | type", None) == "number"


def test_runtime_error_raises_jq_error():
    with pytest.raises(JqError) as exc:
        jq_first(".a.b", {"a": 5})
    assert not isinstance(exc.value, (JqCompileError, JqTimeout))
    assert "Cannot index number" in str(exc.value)
    with pytest.raises(JqError, match="boom"):
        jq_all('error("boom")', None)


def test_input_must_be_json():
    with pytest.raises(JqError, match="not JSON"):
        jq_first(".", {"x": object()})
    with pytest.raises(JqError, match="not JSON"):
        jq_first(".", float("nan"))


# --------------------------------------------------------------------------- compile errors


def test_compile_check_accepts_valid_expressions():
    jq_compile_check(".a")
    jq_compile_check('.properties.replicas * 2 | tostring | "n=\\(.)"')
    jq_compile_check("def f: .x; [.[] | f] # trailing comment")
    jq_compile_check("{import: 1, include: 2} | .import")  # keywords as keys/fields are fine
    jq_compile_check('"$ENV and $__loc__ inside a string are just text"')
    jq_compile_check(".a # a comment mentioning $ENV and input")
    jq_compile_check(".a") is None  # cached path


def test_compile_errors_name_the_problem():
    with pytest.raises(JqCompileError, match="syntax error"):
        jq_compile_check(".a +")
    with pytest.raises(JqCompileError, match=r"nope/0 is not defined"):
        jq_compile_check(".a | nope")
    with pytest.raises(JqCompileError, match="Top-level program not given"):
        jq_compile_check("")
    with pytest.raises(JqCompileError, match="must be a string"):
        jq_compile_check(None)
    # The same problems surface from evaluation, raised rather than put in slots.
    with pytest.raises(JqCompileError, match="syntax error"):
        jq_first(".a +", {})
    with pytest.raises(JqCompileError, match="syntax error"):
        jq_first_many(".a +", [{}, {}])


# --------------------------------------------------------------------------- sandbox


@pytest.mark.parametrize(
    "expression",
    [
        f"$ENV.{SECRET_NAME}",
        f"env.{SECRET_NAME}",
        "$ENV | keys",
        "env | keys",
        "{$ENV}",
        '"\\($ENV)"',
        f"[$ENV[]] | map(select(. == \"{SECRET_VALUE}\"))",
    ],
)
def test_environment_is_not_readable(expression):
    assert os.environ[SECRET_NAME] == SECRET_VALUE
    with pytest.raises(JqCompileError, match=r"not available.*environment") as exc:
        jq_compile_check(expression)
    assert SECRET_VALUE not in str(exc.value)
    with pytest.raises(JqCompileError):
        jq_first(expression, {})


def test_environment_is_empty_even_if_static_check_is_bypassed(monkeypatch):
    # Defence in depth: the worker runs with an empty environment and $ENV is shadowed.
    monkeypatch.setattr(pjq, "_static_problem", lambda expression: None)
    assert jq_first("$ENV", {}) == {}
    assert jq_first(f"$ENV.{SECRET_NAME}", {}) is None


def test_worker_process_environment_is_empty():
    _warm_worker()
    pool = pjq._get_pool()
    pids = [w.pid for w in list(pool.workers)]
    assert pids
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                assert f.read() == b""
        except FileNotFoundError:  # no procfs / worker just exited
            pass


@pytest.mark.parametrize(
    "expression, name",
    [
        ("input", "input"),
        ("[inputs]", "inputs"),
        ("first(inputs)", "inputs"),
        ("debug", "debug"),
        ('debug("message")', "debug"),
        ('"x" | stderr', "stderr"),
        ("input_filename", "input_filename"),
        ("input_line_number", "input_line_number"),
        ("halt", "halt"),
        ('"bye" | halt_error', "halt_error"),
        ('"bye" | halt_error(1)', "halt_error"),
        ("get_search_list", "get_search_list"),
        ("get_prog_origin", "get_prog_origin"),
        ("get_jq_origin", "get_jq_origin"),
        ('"m" | modulemeta', "modulemeta"),
        ("$__loc__", "$__loc__"),
        ("{$__loc__}", "$__loc__"),
        ('import "foo" as foo; .', "import"),
        ('include "foo"; .', "include"),
        ('# comment\ninclude "foo"; .', "include"),
        ("def __portal_jq_unavailable__input: 1; input", "input"),  # cannot re-enable it
    ],
)
def test_io_and_module_builtins_are_refused(expression, name):
    with pytest.raises(JqCompileError) as exc:
        jq_compile_check(expression)
    message = str(exc.value)
    assert name in message and "not available" in message
    with pytest.raises(JqCompileError):
        jq_all(expression, {"a": 1})


def test_user_definitions_with_builtin_names_are_allowed():
    # Shadowing only removes the dangerous builtins; a user's own function of that name is fine.
    assert jq_first("def debug: .a; debug", {"a": 3}) == 3
    assert jq_first("def env: {x: 1}; env.x", {}) == 1


# --------------------------------------------------------------------------- time bounds


@pytest.mark.parametrize(
    "call, expression",
    [
        (jq_first, "def f: f; f"),
        (jq_first, "[range(1e12)] | length"),
        (jq_all, "repeat(1)"),
        (jq_first, "[repeat(1)]"),
        (jq_first, "last(range(1e15))"),
        (jq_first, '[limit(1e9; repeat("aaaaaaaaaaaaaaaaaaaaaaaa"))] | length'),
    ],
)
def test_looping_expressions_time_out_and_next_evaluation_works(call, expression):
    _warm_worker()
    timeout = 0.5
    started = time.monotonic()
    with pytest.raises(JqTimeout, match=r"jq expression exceeded 0\.5s"):
        call(expression, {"a": 1}, timeout=timeout)
    elapsed = time.monotonic() - started
    assert elapsed < timeout + SLACK
    assert jq_first(".a + 1", {"a": 1}) == 2


def test_timed_out_worker_is_killed_and_replaced():
    _warm_worker()
    pool = pjq._get_pool()
    victim = pool.idle[-1]  # LIFO: the next call takes this one
    with pytest.raises(JqTimeout):
        jq_first("def f: f; f", None, timeout=0.3)
    assert victim.proc.returncode is not None  # killed and reaped
    assert victim not in pool.workers
    assert jq_first(SANDBOX_IDENTITY, 7) == 7
    assert victim not in pool.workers


def test_batch_timeout_raises():
    _warm_worker()
    with pytest.raises(JqTimeout):
        jq_first_many("if . == 2 then last(range(1e15)) else . end", [1, 2, 3], timeout=0.3)
    assert jq_first_many(SANDBOX_IDENTITY, [1, 2, 3]) == [1, 2, 3]


def test_memory_blowup_fails_that_evaluation_only():
    # libjq abort()s when allocation fails; that must only cost the worker process.
    with pytest.raises(JqError):
        jq_first("def f: [f]; f", None, timeout=30)
    assert jq_first(".x", {"x": "still alive"}) == "still alive"


def test_crash_on_one_input_only_fails_that_slot():
    results = jq_first_many("if . == 2 then (def f: [f]; f) else . * 10 end", [1, 2, 3], timeout=30)
    assert results[0] == 10 and results[2] == 30
    assert isinstance(results[1], JqError)


def test_timeout_setting_is_read_lazily(monkeypatch):
    monkeypatch.setattr(pjq, "_setting", lambda name, default: 0.25 if name == "JQ_TIMEOUT_SECONDS" else default)
    assert pjq._resolve_timeout(None) == 0.25
    assert pjq._resolve_timeout(3) == 3.0
    with pytest.raises(ValueError):
        pjq._resolve_timeout(0)


# --------------------------------------------------------------------------- batches


def test_first_many_returns_per_slot_errors():
    inputs = [{"a": {"b": 1}}, {"a": 5}, {"a": None}, {"a": {"b": [1, 2]}}, {"x": object()}]
    results = jq_first_many(".a.b", inputs)
    assert len(results) == len(inputs)
    assert results[0] == 1
    assert isinstance(results[1], JqError) and "Cannot index number" in str(results[1])
    assert results[2] is None
    assert results[3] == [1, 2]
    assert isinstance(results[4], JqError) and "not JSON" in str(results[4])


def test_first_many_large_batch_and_empty():
    inputs = [{"i": i, "name": f"svc-{i}"} for i in range(500)]
    assert jq_first_many('.name + ":" + (.i * 2 | tostring)', inputs) == [f"svc-{i}:{i * 2}" for i in range(500)]
    assert jq_first_many(".a", []) == []
    with pytest.raises(JqCompileError):
        jq_first_many("$ENV", [])


# --------------------------------------------------------------------------- concurrency


def test_threads_get_their_own_results():
    errors = []
    n_threads, per_thread = 8, 40

    def work(t):
        try:
            for i in range(per_thread):
                value = t * 1000 + i
                assert jq_first(".v * 2", {"v": value}) == value * 2
                assert jq_all(".v, .t", {"v": value, "t": t}) == [value, t]
                if i % 10 == 0:
                    got = jq_first_many(".v + 1", [{"v": value + k} for k in range(20)])
                    assert got == [value + k + 1 for k in range(20)]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads)
    assert errors == []


def test_a_looping_thread_does_not_block_others():
    _warm_worker()
    outcome = {}

    def loop():
        try:
            jq_first("def f: f; f", None, timeout=1.5)
        except JqTimeout:
            outcome["timed_out"] = True

    th = threading.Thread(target=loop)
    th.start()
    time.sleep(0.1)
    started = time.monotonic()
    for i in range(20):
        assert jq_first(". + 1", i) == i + 1
    assert time.monotonic() - started < 1.0  # served by another worker, not queued behind the loop
    th.join(timeout=10)
    assert outcome.get("timed_out")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_evaluates_with_its_own_workers():
    _warm_worker()
    parent_pids = {w.pid for w in pjq._get_pool().workers}
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            os.close(read_fd)
            result = jq_first_many(".n * 3", [{"n": 1}, {"n": 2}])
            child_pids = {w.pid for w in pjq._get_pool().workers}
            ok = result == [3, 6] and child_pids and not (child_pids & parent_pids)
            os.write(write_fd, b"ok" if ok else repr((result, child_pids)).encode())
            code = 0
        except BaseException as exc:
            try:
                os.write(write_fd, repr(exc).encode())
            except OSError:
                pass
        finally:
            try:
                pjq._shutdown_pool()
            finally:
                os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        message = f.read()
    _, status = os.waitpid(pid, 0)
    assert message == b"ok"
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    # The parent's own workers are untouched by the child.
    assert jq_first(".n", {"n": 5}) == 5


def test_usable_without_django_settings(tmp_path):
    # Importing and using portal.jq must not need configured Django settings.
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from portal.jq import jq_first; print(jq_first('.a', {'a': 41}) + 1)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, root], env=env, cwd=tmp_path, capture_output=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.strip() == b"42"
