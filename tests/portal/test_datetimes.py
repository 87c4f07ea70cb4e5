"""The portal's one date-time type (portal/datetimes.py): what it accepts, what it refuses and why, the text
it stores, and the reader that never raises."""
from datetime import datetime, timezone

import pytest

from portal.datetimes import EARLIEST, LATEST, NotAnInstant, instant_field, instant_of, instant_parse, instant_text
from portal.errors import ValidationFailed


@pytest.mark.parametrize("value, stored", [
    ("2024-06-09T12:28:18.477Z", "2024-06-09T12:28:18.477Z"),
    ("2024-06-09t12:28:18.477z", "2024-06-09T12:28:18.477Z"),  # lower-case t and z
    ("2024-06-09T14:28:18+02:00", "2024-06-09T12:28:18.000Z"),
    ("2024-06-09T14:28:18+0200", "2024-06-09T12:28:18.000Z"),
    ("2024-06-09T14:28:18+02", "2024-06-09T12:28:18.000Z"),
    ("2024-06-09T12:28Z", "2024-06-09T12:28:00.000Z"),
    ("2024-06-09T12:28:18.123456789Z", "2024-06-09T12:28:18.123Z"),
    ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z"),
    ("2999-12-31T23:59:59.999Z", "2999-12-31T23:59:59.999Z"),
    ("3000-01-01T00:30:00+01:00", "2999-12-31T23:30:00.000Z"),  # in range once in UTC
])
def test_accepted_values_are_stored_in_utc_with_milliseconds(value, stored):
    assert instant_text(instant_parse(value)) == stored
    assert instant_parse(value).tzinfo == timezone.utc


@pytest.mark.parametrize("value, reason", [
    ("9999-12-31T23:59:59-01:00", "outside the supported range"),  # beyond Python's year 9999 in UTC
    ("0001-01-01T00:00:00+01:00", "outside the supported range"),  # before year 1 in UTC
    ("1969-12-31T23:59:59.999Z", "outside the supported range"),
    ("3000-01-01T00:00:00Z", "outside the supported range"),
    ("0000-01-01T00:00:00Z", "outside the supported range"),
    ("2024-02-30T00:00:00Z", "is not a real date and time"),
    ("2024-06-09T24:00:00Z", "is not a real date and time"),
    ("2024-06-09T12:28:60Z", "is not a real date and time"),
    ("2024-06-09T12:28:18+24:00", "impossible UTC offset"),
    ("2024-06-09T12:28:18", "is not a date-time with a UTC offset or Z"),  # no offset: which instant?
    ("2024-06-09", "is not a date-time with a UTC offset or Z"),
    ("2024-06-09 12:28:18Z", "is not a date-time with a UTC offset or Z"),
    (" 2024-06-09T12:28:18Z", "is not a date-time with a UTC offset or Z"),
    ("2024-06-09T12:28:18Z\n", "is not a date-time with a UTC offset or Z"),
    ("2024-06-09T12:28:18\x00Z", "is not a date-time with a UTC offset or Z"),
    ("+12024-06-09T12:28:18Z", "is not a date-time with a UTC offset or Z"),
    ("2024-W23-7T12:28:18Z", "is not a date-time with a UTC offset or Z"),
    ("", "is not a date-time with a UTC offset or Z"),
    (1717935698, "got number"),
    (None, "got null"),
    (["2024-06-09T12:28:18Z"], "got array"),
])
def test_refused_values_say_why(value, reason):
    with pytest.raises(NotAnInstant, match=reason):
        instant_parse(value)
    assert instant_of(value) is None  # the reader of stored values never raises


def test_a_refusal_at_a_field_names_it():
    with pytest.raises(ValidationFailed) as refused:
        instant_field("9999-12-31T23:59:59-01:00", "properties.until")
    assert refused.value.status == 422
    assert refused.value.message.startswith("properties.until: '9999-12-31T23:59:59-01:00' is outside the supported range")


@pytest.mark.parametrize("value, start, end", [
    ("2024-06-09", "2024-06-09T00:00:00.000Z", "2024-06-10T00:00:00.000Z"),  # a day: `to` includes it
    ("2024-06-09T10:00", "2024-06-09T10:00:00.000Z", "2024-06-09T10:00:00.000Z"),  # no offset: UTC
    ("2024-06-09T10:00 02:00", "2024-06-09T08:00:00.000Z", "2024-06-09T08:00:00.000Z"),  # `+` unencoded
    (" 2024-06-09T10:00:00z ", "2024-06-09T10:00:00.000Z", "2024-06-09T10:00:00.000Z"),
])
def test_query_parameters_also_take_a_day_or_no_offset(value, start, end):
    assert instant_text(instant_parse(value, query=True)) == start
    assert instant_text(instant_parse(value, query=True, end_of_day=True)) == end


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "1969-12-31T23:00", "yesterday", "2024-13-01"])
def test_query_parameters_are_refused_out_of_range_too(value):
    with pytest.raises(NotAnInstant):
        instant_parse(value, query=True)


def test_the_range_ends_are_instants_the_text_round_trips():
    assert instant_parse(instant_text(EARLIEST)) == EARLIEST
    assert instant_parse(instant_text(LATEST)) == LATEST
    assert instant_of(datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)) is None  # past LATEST
    assert instant_of(datetime(2024, 1, 1)) is None  # naive: not an instant


def test_canonical_text_sorts_as_the_instants_it_stands_for():
    values = ["2024-06-09T12:28:18+02:00", "2024-06-09T11:00:00Z", "2024-06-09T12:28:18.5Z", "2024-06-09T12:28:18Z"]
    by_instant = sorted(values, key=instant_parse)
    by_text = sorted(values, key=lambda v: instant_text(instant_parse(v)))
    assert by_text == by_instant
