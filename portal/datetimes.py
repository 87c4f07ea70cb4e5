"""The portal's one date-time type: an aware UTC `datetime` between EARLIEST and LATEST.

Every date-time that enters the portal — entity properties (`date-time`, `timer`), action inputs, TTL and
lock `until` values, deployment times, query parameters such as `/v1/dora?to=` — is parsed here, once, at
the boundary; what fails is a ValidationFailed naming the field. What is stored is the canonical text
(`instant_text`: ISO 8601 in UTC with milliseconds and Z, the way Port writes timestamps), which sorts as
the instants it stands for. Readers of stored values use `instant_of`, which never raises: a value written
before these rules (another offset, another range) is "no date" for them, never a crashed page.

Why a range: Python's datetime ends at year 9999 and PostgreSQL's goes far beyond, so an instant near
either end breaks arithmetic (a TTL added to it, a UTC conversion, a countdown) in one place or another.
Nothing a portal tracks happened before 1970 or will happen after 2999.
"""
import re
from datetime import date, datetime, time, timedelta, timezone

EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc)
EXAMPLE = "2024-06-09T12:28:18.477Z"

# RFC 3339 (ISO 8601 extended format) with a required offset; `t`/`z` in either case, seconds optional.
_INSTANT_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)"
)
# Query parameters also take a bare date and a date-time without an offset (meaning UTC); an unencoded
# `+hh:mm` arrives as a space.
_QUERY_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(?:([Zz])|([+ -])(\d{2})(?::?(\d{2}))?)?)?"
)


class NotAnInstant(ValueError):
    """Why a value is not a date-time the portal accepts (the text names no field: callers add it)."""


def _build(value, groups, *, end_of_day):
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = groups
    if not 1 <= int(year) <= 9999:
        raise NotAnInstant(_out_of_range(value))
    try:
        if hour is None:  # a bare date (query parameters only)
            moment = datetime.combine(date(int(year), int(month), int(day)), time(), tzinfo=timezone.utc)
            return moment + timedelta(days=1) if end_of_day else moment
        offset = timezone.utc
        if sign:
            if int(off_h) > 23 or int(off_m or 0) > 59:
                raise NotAnInstant(f"{value!r} has an impossible UTC offset")
            delta = timedelta(hours=int(off_h), minutes=int(off_m or 0))
            offset = timezone(-delta if sign == "-" else delta)
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, tzinfo=offset)
        return moment.astimezone(timezone.utc)
    except OverflowError:
        raise NotAnInstant(_out_of_range(value)) from None
    except ValueError as exc:
        if isinstance(exc, NotAnInstant):
            raise
        raise NotAnInstant(f"{value!r} is not a real date and time ({exc})") from None


def _out_of_range(value):
    return f"{value!r} is outside the supported range ({instant_text(EARLIEST)} to {instant_text(LATEST)})"


def instant_parse(value, *, query=False, end_of_day=False):
    """`value` as an aware UTC datetime in range, or NotAnInstant saying why.

    `query`: also a bare date (its midnight UTC; with `end_of_day` the next midnight, so a `to` of a day
    includes that day) and a date-time without an offset (UTC)."""
    if not isinstance(value, str):
        kind = {bool: "boolean", int: "number", float: "number", list: "array", dict: "object"}.get(type(value), "null")
        raise NotAnInstant(f"must be a date-time string like {EXAMPLE}, got {kind}")
    text = value.strip() if query else value
    match = (_QUERY_RE if query else _INSTANT_RE).fullmatch(text)
    if match is None:
        if query:
            raise NotAnInstant(f"{value!r} is not an ISO 8601 date or date-time (e.g. {EXAMPLE})")
        raise NotAnInstant(f"{value!r} is not a date-time with a UTC offset or Z (e.g. {EXAMPLE})")
    groups = list(match.groups())
    if groups[8] == " ":
        groups[8] = "+"
    moment = _build(value, groups, end_of_day=end_of_day)
    if not EARLIEST <= moment <= LATEST:
        raise NotAnInstant(_out_of_range(value))
    return moment


def instant_field(value, path, **options):
    """`instant_parse` for a named field: a ValidationFailed (422) whose error is at `path`."""
    from portal.errors import ValidationFailed

    try:
        return instant_parse(value, **options)
    except NotAnInstant as exc:
        raise ValidationFailed(str(exc), path=path) from None


def instant_text(moment):
    """The canonical text of an instant: ISO 8601 UTC with milliseconds and Z (`2024-06-09T12:28:18.477Z`)."""
    if moment is None:
        return None
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def instant_canonical(value):
    """The canonical text of a date-time string (NotAnInstant when it is not one)."""
    return instant_text(instant_parse(value))


def instant_of(value):
    """A stored date-time value as an aware UTC datetime, or None when it is not one in range. Never raises."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None and EARLIEST <= value <= LATEST else None
    try:
        return instant_parse(value)
    except NotAnInstant:
        return None
