"""Run quotas (the action's `quota` extension): `quota_standing` says where a user stands (the run form shows it,
`run_preflight` decides with it); `run_request` takes `quota_lock` first, inside its transaction.

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
from dataclasses import dataclass
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


def _window_refusal(action, runs, limit, period, who) -> QuotaExceeded | None:
    """The refusal of one more run when `runs` already fill the rolling window, else None."""
    window = PERIODS[period]
    since = timezone.now() - window
    counted = runs.filter(created_at__gt=since)
    created = list(counted.order_by("created_at").values_list("created_at", flat=True)[:limit])
    if len(created) < limit:
        return None
    frees_at = created[0] + window
    refusal = QuotaExceeded(
        f"action {action.identifier!r} allows at most {limit} run{'s' if limit != 1 else ''} "
        f"{'per user' if who == 'perUser' else 'per team'} per {period}; the next frees up at {instant_text(frees_at)}.",
        path=f"quota.{who}", details={"limit": limit, "period": period, "freesUpAt": instant_text(frees_at)},
    )
    refusal.retry_after_seconds = max(1, math.ceil((frees_at - timezone.now()).total_seconds()))  # Retry-After
    return refusal


def live_entities_of(action, user) -> tuple[int, int]:
    """(live entities of the action's blueprint that `user` created or got from its runs, the user's runs of it
    still under way without one): what `liveEntitiesPerUser` counts."""
    users_runs = Run.objects.filter(action=action, requested_by=user)
    live = Entity.objects.filter(blueprint__identifier=action.blueprint_identifier).filter(
        Q(created_by=user.email) | Q(pk__in=users_runs.filter(result_entity__isnull=False).values("result_entity_id"))
    ).count()
    pending = users_runs.exclude(status__in=TERMINAL).filter(result_entity__isnull=True).count()
    return live, pending


def quota_asks_approval(action) -> bool:
    """True when a run beyond the action's quota waits for an approval instead of being refused."""
    return (action.quota or {}).get("whenExceeded") == "requireApproval"


@dataclass(frozen=True)
class QuotaStanding:
    """Where `user` stands against the action's quota before one more run: the limits (`text` says them, and
    what one more run would meet), the live entities counted by `liveEntitiesPerUser`, and the refusal one more
    run would meet (None while under every limit)."""

    action: object
    live: int | None = None  # None: no liveEntitiesPerUser limit applies
    pending: int = 0
    refusal: QuotaExceeded | None = None

    @property
    def exceeded(self) -> bool:
        return self.refusal is not None

    @property
    def asks_approval(self) -> bool:
        """One more run is beyond the quota and waits for an approval."""
        return self.exceeded and quota_asks_approval(self.action)

    @property
    def text(self) -> str:
        """The quota in words for the run form: 'At most 2 runs per person per day. You have 1.'"""
        quota = self.action.quota or {}
        parts = []
        for key, who in (("perUser", "per person"), ("perTeam", "per team")):
            if quota.get(key):
                limit = quota[key]["limit"]
                parts.append(f"{limit} run{'s' if limit != 1 else ''} {who} per {quota[key]['period']}")
        if self.live is not None:
            parts.append(f"{quota['liveEntitiesPerUser']} live at a time per person")
        if not parts:
            return ""
        text = "At most " + ", ".join(parts) + "."
        verdict = (", so this one will wait for an approval." if quota_asks_approval(self.action)
                   else ", so a new run is refused until one of them is deleted.")
        if self.live is not None:
            text += f" You have {self.live}" + (f" and {self.pending} under way" if self.pending else "")
            if self.live + self.pending >= quota["liveEntitiesPerUser"]:
                return text + verdict
            text += "."
        if self.exceeded:
            text += (" You have reached it, so this one will wait for an approval." if self.asks_approval
                     else f" You have reached it: {self.refusal.message}")
        return text


def quota_lock(*, action, user, team_ids=()):
    """Queue behind concurrent requests of the same user (and, for `perTeam`, team) for the action: the
    advisory locks of the request's transaction, taken in a fixed order before counting."""
    quota = action.quota or {}
    if not quota or user is None:
        return
    assert connection.in_atomic_block, "quota_lock must run inside run_request's transaction"
    _advisory_lock(action.pk, "user", user.pk)
    for team_id in sorted(team_ids) if quota.get("perTeam") else []:
        _advisory_lock(action.pk, "team", team_id)


def _window_refusals(action, user, team_ids):
    """The refusals of the rolling windows, `perUser` first then `perTeam` by team id, each counted only when asked."""
    quota = action.quota or {}
    per_user, per_team = quota.get("perUser"), quota.get("perTeam")
    if per_user:
        yield _window_refusal(action, Run.objects.filter(action=action, requested_by=user),
                              per_user["limit"], per_user["period"], "perUser")
    for team_id in sorted(team_ids) if per_team else []:
        runs = Run.objects.filter(action=action, requested_by__groups__team__id=team_id)
        yield _window_refusal(action, runs, per_team["limit"], per_team["period"], "perTeam")


def _live_refusal(action, live, pending) -> QuotaExceeded | None:
    limit = action.quota["liveEntitiesPerUser"]
    if live + pending < limit:
        return None
    return QuotaExceeded(
        f"quota.liveEntitiesPerUser: action {action.identifier!r} allows at most {limit} live "
        f"{action.blueprint_identifier!r} entit{'ies' if limit != 1 else 'y'} per user; you have {live}"
        + (f" and {pending} run{'s' if pending != 1 else ''} under way" if pending else "")
        + f". It frees up when one of your {action.blueprint_identifier!r} entities is deleted.",
        details={"limit": limit, "live": live, "pending": pending},
    )


def quota_standing(*, action, user, team_ids=()) -> QuotaStanding | None:
    """Where `user` stands against the action's quota (None when it has none). Counts without locking: run
    `quota_lock` first in the transaction that then creates the run, so the standing still holds at its commit."""
    quota = action.quota or {}
    if not quota or user is None:
        return None
    refusal = next((refusal for refusal in _window_refusals(action, user, team_ids) if refusal is not None), None)
    if quota.get("liveEntitiesPerUser") is None or action.operation != Operation.CREATE:
        return QuotaStanding(action=action, refusal=refusal)
    live, pending = live_entities_of(action, user)
    return QuotaStanding(action=action, live=live, pending=pending, refusal=refusal or _live_refusal(action, live, pending))
