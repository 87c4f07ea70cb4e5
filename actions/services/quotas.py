"""Run quotas (the action's `quota` extension), checked inside `run_request`'s transaction.

Atomicity: before counting, the check takes transaction-scoped advisory locks keyed on (action, user)
and, for `perTeam`, (action, team) — in a fixed order, so concurrent requests of the same user/team
for the same action queue behind each other, each counting the runs the previous ones committed
(READ COMMITTED gives every statement a fresh snapshot). Two requests can never both squeeze under a
limit; requests of other users or actions are not serialized.

Windows are rolling: a run counts while `created_at > now - period`; the limit frees up when the
oldest counted run leaves the window. `perTeam` applies to each team of the requester (runs requested
by any member of that team); a requester without teams has no team quota. `liveEntitiesPerUser`
(CREATE actions only) counts the user's live entities of the action's blueprint — entities whose
`created_by` is the user's email or that are the `result_entity` of the user's runs of this action —
plus the user's CREATE runs of this action still waiting or in progress without a result entity yet.
"""
import hashlib
import math
from datetime import timedelta

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from actions.choices import Operation
from actions.models import Run
from actions.state import TERMINAL
from catalog.models import Entity
from portal.errors import PortalError
from portal.datetimes import instant_text

PERIODS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1), "month": timedelta(days=30)}


class QuotaExceeded(PortalError):
    status = 429
    code = "quota_exceeded"


def _lock_key(*parts) -> int:
    digest = hashlib.blake2b(":".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _advisory_lock(*parts):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key("run-quota", *parts)])


def _window_check(action, runs, limit, period, who):
    window = PERIODS[period]
    since = timezone.now() - window
    counted = runs.filter(created_at__gt=since)
    created = list(counted.order_by("created_at").values_list("created_at", flat=True)[:limit])
    if len(created) < limit:
        return
    frees_at = created[0] + window
    refusal = QuotaExceeded(
        f"quota.{who}: action {action.identifier!r} allows at most {limit} run{'s' if limit != 1 else ''} "
        f"{'per user' if who == 'perUser' else 'per team'} per {period}; the next frees up at {instant_text(frees_at)}.",
        details={"limit": limit, "period": period, "freesUpAt": instant_text(frees_at)},
    )
    refusal.retry_after_seconds = max(1, math.ceil((frees_at - timezone.now()).total_seconds()))  # Retry-After
    raise refusal


def live_entities_of(action, user) -> tuple[int, int]:
    """(live entities of the action's blueprint that `user` created or got from its runs, the user's runs of it
    still under way without one): what `liveEntitiesPerUser` counts."""
    users_runs = Run.objects.filter(action=action, requested_by=user)
    live = Entity.objects.filter(blueprint__identifier=action.blueprint_identifier).filter(
        Q(created_by=user.email) | Q(pk__in=users_runs.filter(result_entity__isnull=False).values("result_entity_id"))
    ).count()
    pending = users_runs.exclude(status__in=TERMINAL).filter(result_entity__isnull=True).count()
    return live, pending


def quota_check(*, action, user, team_ids=()):
    """Raise QuotaExceeded when one more run of `action` by `user` would break the action's quota.
    Must run inside the transaction that then creates the run (the locks are held until it ends)."""
    quota = action.quota or {}
    if not quota or user is None:
        return
    assert connection.in_atomic_block, "quota_check must run inside run_request's transaction"
    per_team = quota.get("perTeam")
    _advisory_lock(action.pk, "user", user.pk)
    team_ids = sorted(team_ids) if per_team else []
    for team_id in team_ids:
        _advisory_lock(action.pk, "team", team_id)

    per_user = quota.get("perUser")
    if per_user:
        _window_check(action, Run.objects.filter(action=action, requested_by=user),
                      per_user["limit"], per_user["period"], "perUser")
    for team_id in team_ids:
        runs = Run.objects.filter(action=action, requested_by__groups__team__id=team_id)
        _window_check(action, runs, per_team["limit"], per_team["period"], "perTeam")

    live_limit = quota.get("liveEntitiesPerUser")
    if live_limit is not None and action.operation == Operation.CREATE:
        live, pending = live_entities_of(action, user)
        if live + pending >= live_limit:
            raise QuotaExceeded(
                f"quota.liveEntitiesPerUser: action {action.identifier!r} allows at most {live_limit} live "
                f"{action.blueprint_identifier!r} entit{'ies' if live_limit != 1 else 'y'} per user; you have {live}"
                + (f" and {pending} run{'s' if pending != 1 else ''} under way" if pending else "")
                + f". It frees up when one of your {action.blueprint_identifier!r} entities is deleted.",
                details={"limit": live_limit, "live": live, "pending": pending},
            )
