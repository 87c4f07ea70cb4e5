"""Keyset pages of entities sorted by a column (the catalog's table pages): no OFFSET and no COUNT(*), so a page costs the same at
100,000 entities as at 100, and rows added meanwhile never shift the page.

The order is (value missing?, value, id): entities without a value come last in both directions, the id
breaks ties. A cursor is the position of a row in that order, plus whether the next page is after or
before it (the previous-page link), plus the sort it belongs to: `[direction, sort, missing, value, id]`,
encoded like the API's cursors (portal.api.pagination).
"""
import json
import math
from dataclasses import dataclass

from django.db.models import DateTimeField, F, JSONField, TextField
from django.db.models.expressions import OrderBy

from catalog.selectors.search import EntityCondition
from portal.api.pagination import cursor_decode, cursor_encode
from portal.datetimes import instant_of
from portal.errors import ValidationFailed

AFTER, BEFORE = "a", "b"
# The entity columns a table sorts by besides schema properties: never missing, so never last.
SORTABLE_META = {"$identifier": "identifier", "$title": "title", "$createdAt": "created_at", "$updatedAt": "updated_at"}


class EntityValue(EntityCondition):
    """A SQL value of the entity row (not a condition), with the same column relabelling as EntityCondition."""

    conditional = False

    def __init__(self, sql, params=(), output_field=None):
        super().__init__(sql, params)
        self.output_field = output_field


@dataclass(frozen=True)
class Sort:
    key: str  # "$identifier", "$title", "$createdAt", "$updatedAt", a schema or an aggregation property
    descending: bool = False
    column: str = "properties"  # where a property's value is: "aggregates" for an aggregation property

    @classmethod
    def parse(cls, raw, *, aggregated=()):
        """`key` or `-key`; a key among `aggregated` (the blueprint's aggregation properties) sorts by its value."""
        raw = (raw or "").strip()
        key, descending = (raw[1:], True) if raw.startswith("-") else (raw, False)
        return cls(key, descending, "aggregates" if key in aggregated else "properties")

    def __str__(self):
        return f"-{self.key}" if self.descending else self.key

    @property
    def nullable(self):
        return self.key not in SORTABLE_META

    def value_sql(self):
        """(SQL, params, output field, cast of a cursor value) of the sorted value."""
        if self.key in ("$createdAt", "$updatedAt"):
            return f"⟨{SORTABLE_META[self.key]}⟩", (), DateTimeField(), "%s::timestamptz"
        if self.key in SORTABLE_META:
            return f"⟨{SORTABLE_META[self.key]}⟩", (), TextField(), "%s"
        # JSON null and a missing key are both "no value" (SQL NULL), so they sort together, last.
        return f"NULLIF(⟨{self.column}⟩ -> %s, 'null'::jsonb)", (self.key,), JSONField(), "%s::jsonb"


@dataclass
class Page:
    rows: list
    next_cursor: str | None
    previous_cursor: str | None


def _position(sort, row):
    value = row._sort_value
    if value is not None and sort.key in ("$createdAt", "$updatedAt"):
        value = value.isoformat()
    return [sort.key, value is None, value, row.pk]


def _cursor(direction, sort, row):
    return cursor_encode([direction, *_position(sort, row)])


def _decode(cursor, sort, field):
    decoded = cursor_decode(cursor, field)
    if decoded is None:
        return None, None
    valid = (isinstance(decoded, list) and len(decoded) == 5 and decoded[0] in (AFTER, BEFORE)
             and isinstance(decoded[2], bool) and isinstance(decoded[4], int) and not isinstance(decoded[4], bool))
    if not valid:
        raise ValidationFailed("is not a cursor of this page", path=field)
    if decoded[1] != sort.key:
        raise ValidationFailed("belongs to another sort order; start again from the first page", path=field)
    missing, value = decoded[2], decoded[3]
    if sort.key in ("$createdAt", "$updatedAt") and not missing:
        value = instant_of(value)  # a hand-made cursor must not reach PostgreSQL's cast as an impossible date
        valid = value is not None
    elif missing:
        valid = value is None
    elif isinstance(value, str):
        valid = "\x00" not in value  # PostgreSQL text and jsonb hold no NUL
    else:  # a property's JSON value: what the sortable types hold, finite (json.loads takes NaN)
        valid = sort.key not in SORTABLE_META and isinstance(value, (int, float, bool)) and math.isfinite(value)
    if not valid:
        raise ValidationFailed("is not a cursor of this page", path=field)
    return decoded[0], [missing, value, decoded[4]]


def _beyond(sort, position, direction):
    """Condition: the row comes after (AFTER) or before (BEFORE) `position` in the sort order. A non-missing
    bound is also written as a plain range (`value >= bound AND (...)`): PostgreSQL seeks an index on the value to
    it, where the OR alone would make it read every row before the cursor."""
    missing, value, pk = position
    sql, params, _field, cast = sort.value_sql()
    forward = (direction == AFTER) != sort.descending
    greater = ">" if forward else "<"
    bound = value if sort.key in SORTABLE_META else json.dumps(value)
    if missing:
        if direction == AFTER:
            return EntityCondition(f"{sql} IS NULL AND ⟨id⟩ {greater} %s", (*params, pk))
        return EntityCondition(f"{sql} IS NOT NULL OR ⟨id⟩ {greater} %s", (*params, pk))
    text = f"{sql} {greater}= {cast} AND ({sql} {greater} {cast} OR ({sql} = {cast} AND ⟨id⟩ {greater} %s))"
    text_params = (*params, bound, *params, bound, *params, bound, pk)
    if direction == AFTER and sort.nullable:  # rows without a value come after every row with one
        return EntityCondition(f"({text}) OR {sql} IS NULL", (*text_params, *params))
    return EntityCondition(text, text_params)


def sorted_page(queryset, *, sort, limit, after=None, before=None):
    """One page of `queryset` in `sort` order from the cursor `after` (next page) or `before` (previous
    page); the row objects carry `_sort_value`. Raises ValidationFailed naming a bad cursor parameter."""
    field, cursor = ("before", before) if before else ("after", after)
    direction, position = _decode(cursor, sort, field)
    if direction is not None and direction != (BEFORE if field == "before" else AFTER):
        raise ValidationFailed("is not a cursor of this page", path=field)
    sql, params, output_field, _cast = sort.value_sql()
    value = EntityValue(sql, params, output_field)
    backwards = direction == BEFORE
    descending = sort.descending != backwards
    # Missing values last going forward, so first going backwards.
    nulls = ({"nulls_first": True} if backwards else {"nulls_last": True}) if sort.nullable else {}
    order = [OrderBy(EntityValue(sql, params, output_field), descending=descending, **nulls),
             OrderBy(F("id"), descending=descending)]
    queryset = queryset.annotate(_sort_value=value)
    if position is not None:
        queryset = queryset.filter(_beyond(sort, position, direction))
    rows = list(queryset.order_by(*order)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
        next_cursor = _cursor(AFTER, sort, rows[-1]) if rows else None
        previous_cursor = _cursor(BEFORE, sort, rows[0]) if more and rows else None
    else:
        next_cursor = _cursor(AFTER, sort, rows[-1]) if more and rows else None
        previous_cursor = _cursor(BEFORE, sort, rows[0]) if position is not None and rows else None
    return Page(rows=rows, next_cursor=next_cursor, previous_cursor=previous_cursor)
