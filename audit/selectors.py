"""Reads of the audit log: the filtered, keyset-paged list the API serves. Which events a user may see is the
catalog's to answer (catalog/selectors/audit_events.py): the caller passes them in."""
from dataclasses import dataclass, field
from datetime import datetime

from audit.choices import AuditAction, AuditStatus
from portal.actor import AuditOrigin
from portal.api.pagination import cursor_decode, cursor_encode
from portal.datetimes import instant_field
from portal.errors import ValidationFailed

# Port's documented resource types; others we record (api_client, ...) are accepted too when they are
# well-formed names, so an app adding a resource type does not need a change here.
PORT_RESOURCES = ("blueprint", "entity", "run", "action", "scorecard", "team", "user")
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


@dataclass
class AuditFilters:
    identifier: str | None = None
    entity: str | None = None
    blueprint: str | None = None
    run_id: str | None = None
    resources: list = field(default_factory=list)
    action: str | None = None
    status: str | None = None
    origin: str | None = None
    start: datetime | None = None  # `from`
    end: datetime | None = None  # `to`
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None  # `next` of the previous page


def _datetime(raw, name):
    """An ISO 8601 date-time (naive means UTC), or a bare date meaning its midnight UTC."""
    return instant_field(raw, name, query=True)


def _choice(raw, name, choices):
    value = raw.strip().upper()
    if value not in choices.values:
        raise ValidationFailed(f"must be one of {list(choices.values)}, got {raw!r}", path=name)
    return value


def audit_filters_parse(params):
    """Query parameters (a QueryDict) → AuditFilters; a bad value raises ValidationFailed naming its parameter."""
    def one(name):
        value = params.get(name)
        return value if value not in (None, "") else None

    resources = []
    for raw in params.getlist("resources") + params.getlist("resources[]"):
        resources += [part.strip().lower() for part in raw.split(",") if part.strip()]
    for resource in resources:
        if not (resource.isascii() and resource.replace("_", "").isalpha()):
            raise ValidationFailed(f"unknown resource type {resource!r} (one of {list(PORT_RESOURCES)})", path="resources")
    limit_raw = one("limit")
    limit = DEFAULT_LIMIT
    if limit_raw is not None:
        try:
            limit = int(limit_raw)
        except ValueError:
            raise ValidationFailed(f"must be an integer, got {limit_raw!r}", path="limit")
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationFailed(f"must be between 1 and {MAX_LIMIT}", path="limit")
    filters = AuditFilters(
        identifier=one("identifier"), entity=one("entity"), blueprint=one("blueprint"), run_id=one("run_id"),
        resources=list(dict.fromkeys(resources)), limit=limit, cursor=one("next"),
        action=_choice(one("action"), "action", AuditAction) if one("action") else None,
        status=_choice(one("status"), "status", AuditStatus) if one("status") else None,
        origin=_choice(one("origin"), "origin", AuditOrigin) if one("origin") else None,
        start=_datetime(one("from"), "from") if one("from") else None,
        end=_datetime(one("to"), "to") if one("to") else None,
    )
    if filters.start and filters.end and filters.start > filters.end:
        raise ValidationFailed("must not be later than to", path="from")
    return filters


def audit_events_list(visible, filters):
    """(events newest first, next cursor or None) among `visible` (the AuditEvent queryset the asking user may
    see) under `filters`."""
    queryset = visible
    if filters.identifier:
        queryset = queryset.filter(identifier=filters.identifier)
    if filters.entity:
        queryset = queryset.filter(resource_type="entity", identifier=filters.entity)
    if filters.blueprint:
        queryset = queryset.filter(blueprint=filters.blueprint)
    if filters.run_id:
        queryset = queryset.filter(run_id=filters.run_id)
    if filters.resources:
        queryset = queryset.filter(resource_type__in=filters.resources)
    if filters.action:
        queryset = queryset.filter(action=filters.action)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.origin:
        queryset = queryset.filter(origin=filters.origin)
    if filters.start:
        queryset = queryset.filter(at__gte=filters.start)
    if filters.end:
        queryset = queryset.filter(at__lte=filters.end)
    before_id = cursor_decode(filters.cursor, "next")
    if before_id is not None:
        if not isinstance(before_id, int) or isinstance(before_id, bool):
            raise ValidationFailed("is not a cursor returned by this API", path="next")
        queryset = queryset.filter(id__lt=before_id)
    # Ids grow as events are recorded: newest first, stable under inserts (chain order is the seals' position).
    rows = list(queryset.order_by("-id")[: filters.limit + 1])
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    return rows, (cursor_encode(rows[-1].id) if more and rows else None)
