"""Calculation properties (catalog/selectors/entities.py apply_calculations): several that do not read each other
are evaluated in one jq round trip with the results, errors and messages each gives alone; one that reads another's
result is evaluated after it, as always."""
from types import SimpleNamespace

import pytest

import catalog.selectors.entities as entities
from portal.jq import JqError, jq_first


def blueprint(**calculations):
    return SimpleNamespace(calculation_properties={key: {"calculation": expression, "type": "string"}
                                                   for key, expression in calculations.items()})


def documents(*versions):
    return [{"identifier": f"svc-{n}", "properties": {"version": version}, "relations": {"env": "prod"}}
            for n, version in enumerate(versions)]


@pytest.fixture
def jq_calls(monkeypatch):
    calls = []
    real = entities.jq_first_many

    def counted(expression, inputs, **options):
        calls.append(expression)
        return real(expression, inputs, **options)

    monkeypatch.setattr(entities, "jq_first_many", counted)
    return calls


def alone(expression, document):
    try:
        return jq_first(expression, document)
    except JqError as exc:
        return exc


def test_independent_calculations_take_one_round_trip_with_each_ones_result(jq_calls):
    bp = blueprint(label='.identifier + "@" + .properties.version',
                   major='.properties.version | split(".") | .[0] | tonumber',
                   nothing="empty",
                   commented='# the environment\n.relations.env',
                   defined='def twice: . + .; .identifier | twice')
    docs = documents("1.2.3", "10.0.0")
    expected = [{key: alone(calc["calculation"], dict(doc)) for key, calc in bp.calculation_properties.items()}
                for doc in documents("1.2.3", "10.0.0")]
    entities.apply_calculations(bp, docs)
    assert len(jq_calls) == 1
    assert [{key: doc["properties"][key] for key in bp.calculation_properties} for doc in docs] == expected
    assert expected[1] == {"label": "svc-1@10.0.0", "major": 10, "nothing": None, "commented": "prod",
                           "defined": "svc-1svc-1"}
    assert not any("calculationErrors" in doc for doc in docs)


def test_a_failing_calculation_is_null_with_the_message_it_gives_alone(jq_calls):
    bp = blueprint(major='.properties.version | split(".") | .[0] | tonumber', label='.identifier')
    docs = documents("1.2.3", "not-a-number.1")
    entities.apply_calculations(bp, docs)
    message = str(alone('.properties.version | split(".") | .[0] | tonumber', documents("1.2.3", "not-a-number.1")[1]))
    assert message.startswith("jq: error")
    assert docs[0]["properties"]["major"] == 1 and "calculationErrors" not in docs[0]
    assert docs[1]["properties"]["major"] is None and docs[1]["calculationErrors"] == {"major": message}
    assert docs[1]["properties"]["label"] == "svc-1"
    assert len(jq_calls) == 2  # the batch, then the failing one alone for its message


def test_a_calculation_reading_another_is_evaluated_after_it(jq_calls):
    bp = blueprint(base='.properties.version', shown='"v" + .properties.base')
    docs = documents("1.2.3")
    entities.apply_calculations(bp, docs)
    assert docs[0]["properties"]["shown"] == "v1.2.3" and len(jq_calls) == 2


def test_a_program_that_does_not_run_together_falls_back_to_one_by_one(jq_calls):
    bp = blueprint(fine=".identifier", broken=".properties | ((")  # refused when saved; here as if stored before
    docs = documents("1.2.3")
    entities.apply_calculations(bp, docs)
    assert docs[0]["properties"] == {"version": "1.2.3", "fine": "svc-0", "broken": None}
    assert docs[0]["calculationErrors"]["broken"] == str(alone(".properties | ((", docs[0]))


def test_calculations_in_the_subset_the_process_evaluates_take_no_round_trip(monkeypatch):
    """Each of the starter's kinds of calculation (paths joined into a URL, a conditional label) is in
    portal/jq_fast.py's subset: evaluated here, in turn, with what the sandbox gives."""
    from unittest import mock

    from portal import jq as pjq
    from portal import jq_fast

    bp = blueprint(url='"https://logs/?s=" + (.relations.env // "") + "&v=" + .properties.version',
                   state='if .properties.version == "1.2.3" then "old" elif .relations.env == "prod" then "current" '
                         'else "other" end',
                   reads_url='.properties.url + "#top"')  # the one before it, as in turn always did
    with mock.patch.object(jq_fast, "compiled", return_value=None):
        expected = documents("1.2.3", "10.0.0")
        entities.apply_calculations(bp, expected)

    def refuse(*args, **kwargs):
        raise AssertionError("the sandbox was asked")

    monkeypatch.setattr(pjq, "_run", refuse)
    docs = documents("1.2.3", "10.0.0")
    entities.apply_calculations(bp, docs)
    assert docs == expected
    assert [doc["properties"]["state"] for doc in docs] == ["old", "current"]
    assert docs[1]["properties"]["reads_url"] == "https://logs/?s=prod&v=10.0.0#top"
