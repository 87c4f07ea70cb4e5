"""portal/jq_fast.py: the subset of jq evaluated in the process gives what the jq sandbox gives, or leaves the input to
the sandbox. Generated expressions and documents are run both ways (a bounded number here; `make fuzz` runs
many more).
Plain pytest (no database)."""
import json
import os
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal import jq as pjq
from portal import jq_fast
from portal.jq import JqError, jq_all, jq_first, jq_first_many

EXAMPLES = int(os.environ.get("JQ_FAST_EXAMPLES", "250"))
STARTER = {
    "logsUrl": '"https://logs.example.com/app/logs?service=" + (.relations.service // "") + "&env=" + '
               '(.relations.environment // "")',
    "lockState": 'if .properties.locked == true then "service locked" elif .properties.environmentLocked == true '
                 'then "environment locked" else "open" end',
}


def sandbox_first_many(expression, documents):
    with mock.patch.object(jq_fast, "compiled", return_value=None):
        return jq_first_many(expression, documents)


@pytest.fixture
def no_sandbox(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the sandbox was asked")
    monkeypatch.setattr(pjq, "_run", refuse)


def test_the_starter_calculations_run_in_the_process(no_sandbox):
    running = {"identifier": "cart-production", "properties": {"locked": False, "environmentLocked": True},
               "relations": {"service": "cart", "environment": "production"}}
    assert jq_first(STARTER["logsUrl"], running) == "https://logs.example.com/app/logs?service=cart&env=production"
    assert jq_first(STARTER["logsUrl"], {"relations": {}}) == "https://logs.example.com/app/logs?service=&env="
    assert jq_first_many(STARTER["lockState"], [running, {"properties": {"locked": True}}, {}]) == [
        "environment locked", "service locked", "open"]
    assert jq_all(".properties.locked", running) == [False]


@pytest.mark.parametrize("expression, document", [
    (".a.b", {"a": 5}),  # jq fails: its message
    ('.a.b // "none"', {"a": 5}),
    ('.a + 1', {"a": "x"}),
    (".a", {"a": 1.5}),  # a float: written as jq writes it
    (".a", {"a": 2**60}),
    (".a + .a", {"a": 2**52}),
    ('.a | ascii_downcase', {"a": "X"}),  # not in the subset
    ('"\\(.a)"', {"a": 1}),
])
def test_what_the_subset_does_not_answer_the_sandbox_does(expression, document):
    def seen(results):
        return [("error", str(r)) if isinstance(r, JqError) else ("value", json.dumps(r)) for r in results]

    assert seen(jq_first_many(expression, [document])) == seen(sandbox_first_many(expression, [document]))


def test_a_default_does_not_catch_a_failure_as_jq_does_not():
    with pytest.raises(JqError, match="Cannot index number"):
        jq_first('.a.b // "none"', {"a": 5})
    assert jq_first('.a.b // "none"', {"a": {}}) == "none"


def test_an_expression_outside_the_subset_is_not_parsed():
    for expression in ("$ENV", ".a | .b", ".a, .b", "[.a]", "{a: 1}", ".a?", "1.5", "1e3", ".a - 1", "not",
                       ".a == .b == .c", "if . then 1", "..", "input", '"\\ud800"', "." + "(" * 40 + ")" * 40):
        assert jq_fast.compiled(expression) is None, expression


def test_input_that_is_not_json_is_refused_as_before():
    with pytest.raises(JqError, match="not JSON"):
        jq_first(".a", {"a": float("nan")})


# --- generated: the subset against the sandbox --------------------------------------------------------------------

KEYS = ["a", "b", "x y", "properties", "relations", "é"]
strings = st.text(alphabet=st.sampled_from(list("ab Zé☃\"\\/\n\t") + ["\u0000", "\U0001f600"]), max_size=6)
integers = st.one_of(st.integers(-5, 5), st.integers(-2**60, 2**60))
scalars = st.one_of(st.none(), st.booleans(), integers, st.floats(allow_nan=False, allow_infinity=False), strings)
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)), max_leaves=12)


paths = st.lists(st.one_of(
    st.sampled_from([f".{key}" for key in KEYS if key.isidentifier() and key.isascii()]),
    st.sampled_from(KEYS).map(lambda key: f'."{key}"'),
    st.sampled_from(KEYS).map(lambda key: f'.["{key}"]'),
    st.integers(-3, 3).map(lambda n: f".[{n}]")), max_size=3).map(lambda steps: "".join(steps) or ".")
literals = st.one_of(strings.map(lambda text: json.dumps(text, ensure_ascii=False)),
                     st.integers(0, 2**60).map(str), st.sampled_from(["true", "false", "null"]))
OPERATORS = ["+", "==", "!=", "<", "<=", ">", ">=", "and", "or", "//"]


def _combine(inner):
    def binary(parts):
        left, operator, right, wrap = parts
        return f"({left}) {operator} ({right})" if wrap else f"{left} {operator} {right}"

    def conditional(parts):
        condition, then, elifs, otherwise = parts
        text = f"if {condition} then {then}"
        for c, t in elifs:
            text += f" elif {c} then {t}"
        return text + (f" else {otherwise} end" if otherwise is not None else " end")

    return st.one_of(
        st.tuples(inner, st.sampled_from(OPERATORS), inner, st.booleans()).map(binary),
        st.tuples(inner, inner, st.lists(st.tuples(inner, inner), max_size=2), st.none() | inner).map(conditional),
        inner.map(lambda text: f"({text})"))


expressions = st.recursive(st.one_of(paths, literals), _combine, max_leaves=6)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expression=expressions, inputs=st.lists(documents, min_size=1, max_size=4))
def test_the_subset_gives_what_jq_gives(expression, inputs):
    tree = jq_fast.compiled(expression)
    if tree is None:  # a chained comparison (jq refuses it too) or a literal past 2^53: the sandbox's alone
        return
    sandbox = sandbox_first_many(expression, inputs)
    for document, expected in zip(inputs, sandbox):
        try:
            got = jq_fast.evaluate(tree, document)
        except jq_fast.Unsupported:
            continue
        assert not isinstance(expected, JqError), (expression, document, expected)
        assert json.dumps(got, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False), (expression, document)


def test_a_result_shares_nothing_with_its_document(no_sandbox):
    document = {"relations": {"service": ["a"]}, "properties": {}}
    whole, relations = jq_first(".", document), jq_first(".relations", document)
    assert whole == document and whole is not document and relations["service"] is not document["relations"]["service"]
    document["properties"]["self"] = whole  # as apply_calculations sets a calculation of `.`
    json.dumps(document)  # no circular reference
