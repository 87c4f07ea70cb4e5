"""Keyset cursors: opaque, stable under concurrent inserts, no COUNT(*)."""
import base64
import json

from portal.errors import ValidationFailed


def cursor_encode(values):
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def cursor_decode(cursor, field="from"):
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise ValidationFailed("is not a cursor returned by this API", path=field)


def keyset_page(queryset, *, limit, cursor, field="from"):
    """Page a queryset ordered by id; returns (rows, next_cursor)."""
    after = cursor_decode(cursor, field)
    if after is not None:
        if not isinstance(after, int):
            raise ValidationFailed("is not a cursor returned by this API", path=field)
        queryset = queryset.filter(id__gt=after)
    rows = list(queryset.order_by("id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (cursor_encode(rows[-1].id) if more and rows else None)
