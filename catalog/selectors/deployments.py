"""Permission-filtered reads of deployments and running services, and the DORA metrics over them.

Every read joins a row to all the entities it shows (deployment → running service → service and
environment) and returns the row only when the user may read each of them, so a user who may not read
a blueprint sees nothing of it. Filters name a service (Component identifier), an environment, or a team
owning the service; an unknown or unreadable filter value is a NotFound naming the parameter, like the
CI endpoints answer for an unknown service or environment.

Timestamps are the entities' ISO strings (validated as date-times when written); SQL casts those that start
like a date to timestamptz and treats any other value as missing. Aggregation happens in SQL: a constant
number of queries whatever the number of rows.
"""
from datetime import datetime, timedelta, timezone

from django.db import connection

from catalog.access import readable_blueprint_ids, user_team_ids
from catalog.models import Blueprint
from portal.errors import FieldError, NotFound, ValidationFailed
from portal.datetimes import instant_field, instant_text

ENVIRONMENT, RUNNING_SERVICE, DEPLOYMENT, COMPONENT = "environment", "runningService", "deployment", "Component"
ENVIRONMENT_TYPES = ("production", "staging", "development")
DEFAULT_PERIOD = timedelta(days=30)
MAX_PERIOD = timedelta(days=731)  # two years of daily series at most
ROUND = 3

# Which entity of the joined row belongs to which blueprint.
ALIASES = {"d": DEPLOYMENT, "rs": RUNNING_SERVICE, "svc": COMPONENT, "env": ENVIRONMENT}

# running service → its service and environment (relations are one row each; `many: false`).
RUNNING_SERVICE_JOINS = """
      JOIN catalog_relation rss ON rss.source_id = rs.id AND rss.relation = 'service'
      JOIN catalog_entity svc ON svc.id = rss.target_id
      JOIN catalog_relation rse ON rse.source_id = rs.id AND rse.relation = 'environment'
      JOIN catalog_entity env ON env.id = rse.target_id
"""
# Deployment reads first fetch the running services they may show (hundreds of rows, filters applied), then
# the deployments of those ids. Passing the ids as an array gives the planner their number: joined in one
# statement its estimate collapses to one row and it walks 100k deployments through nested index loops.
RUNNING_IDS_SQL = f"""
    SELECT rs.id, rs.identifier, svc.identifier, env.identifier,
           (SELECT COUNT(*) FROM catalog_entity every WHERE every.blueprint_id = %(bp_rs)s)
      FROM catalog_entity rs {RUNNING_SERVICE_JOINS}
     WHERE rs.blueprint_id = %(bp_rs)s AND {{visible_rs}} AND {{visible_svc}} AND {{visible_env}} AND {{filters}}
"""
# The deployments of those running services, `drs.target_id` being the running service. Reading most of
# them, a hash join over one scan is fastest; reading a few running services' (one service, one team), the
# planner would still scan every deployment, so the LATERAL ... OFFSET 0 fence makes it fetch each by its
# key from the relation index — 3 to 5 times faster at 100k deployments, and 2 times slower for all of them.
NARROW_SHARE = 0.1
DEPLOYMENTS_OF_MANY = """
          FROM catalog_relation drs
          JOIN catalog_entity d ON d.id = drs.source_id
         WHERE drs.relation = 'runningService' AND drs.target_id = ANY(%(running_ids)s)
           AND d.blueprint_id = %(bp_d)s AND {visible_d}
"""
DEPLOYMENTS_OF_FEW = """
          FROM catalog_relation drs
         CROSS JOIN LATERAL (SELECT d.id, d.properties FROM catalog_entity d
                              WHERE d.id = drs.source_id AND d.blueprint_id = %(bp_d)s AND {visible_d} OFFSET 0) AS d
         WHERE drs.relation = 'runningService' AND drs.target_id = ANY(%(running_ids)s)
"""


def _timestamp(alias, key):
    # LIKE, not a regular expression: this runs for every deployment and a regex costs twice the cast.
    text = f"({alias}.properties ->> '{key}')"
    return f"CASE WHEN {text} LIKE '____-__-__%%' THEN {text}::timestamptz END"


FINISHED_AT = _timestamp("d", "finishedAt")
COMMIT_TIME = _timestamp("d", "commitTime")
ENVIRONMENT_ORDER = "CASE env.properties ->> 'type' " + " ".join(
    f"WHEN '{kind}' THEN {rank}" for rank, kind in enumerate(ENVIRONMENT_TYPES)) + f" ELSE {len(ENVIRONMENT_TYPES)} END"


def _lock_columns(alias):
    return (f"COALESCE(({alias}.properties ->> 'locked') = 'true', false), {alias}.properties ->> 'lockReason', "
            f"{alias}.properties ->> 'lockedBy', {alias}.properties ->> 'lockedAt', {alias}.properties ->> 'lockedUntil'")


def _lock(columns):
    locked, reason, by, at, until = columns
    return {"locked": locked, "reason": reason, "by": by, "at": at, "until": until}


class _Scope:
    """What one read may show: the blueprint ids, an SQL condition that every joined entity is readable, and
    the filter condition. `empty` when the user may read none of a blueprint the read joins (or it is not
    installed): the read then answers without its main query."""

    def __init__(self, user, aliases, *, service=None, environment=None, team=None):
        self._full, self._owned = readable_blueprint_ids(user)
        ids = dict(Blueprint.objects.filter(identifier__in=set(ALIASES.values())).values_list("identifier", "id"))
        self.params = {f"bp_{alias}": ids.get(blueprint) for alias, blueprint in ALIASES.items()}
        self.params["reader_team_ids"] = sorted(user_team_ids(user)) if self._full is not None else []
        self.deployments_source = DEPLOYMENTS_OF_MANY
        self.visible = {alias: self._readable(alias) for alias in aliases}
        self.empty = any(condition is None for condition in self.visible.values())
        self.filters = self._resolve_filters(service, environment, team)

    def _readable(self, alias):
        """SQL: the entity under `alias` is readable (the rules of `entities_visible_to`); None: none is."""
        blueprint_id = self.params[f"bp_{alias}"]
        if blueprint_id is None:
            return None
        if self._full is None or blueprint_id in self._full:
            return "TRUE"
        if blueprint_id in self._owned and self.params["reader_team_ids"]:
            return (f"EXISTS (SELECT 1 FROM catalog_entity_teams {alias}_owner WHERE {alias}_owner.entity_id = {alias}.id "
                    f"AND {alias}_owner.team_id = ANY(%(reader_team_ids)s))")
        return None

    def _resolve_filters(self, service, environment, team):
        """Filter values → ids, in one query; NotFound for a value naming nothing the user may read."""
        lookups, conditions = [], []
        for name, value, alias, error in (
            ("service", service, "svc", FieldError("service", f"{service!r} is not a Component in the catalog")),
            ("environment", environment, "env",
             FieldError("environment", f"{environment!r} is not an environment in the catalog")),
        ):
            if value is None:
                continue
            readable = self._readable(alias)
            if readable is None:
                raise NotFound(error)
            self.params[name] = value
            lookups.append((name, f"SELECT {alias}.id FROM catalog_entity {alias} WHERE {alias}.blueprint_id = %(bp_{alias})s "
                                  f"AND {alias}.identifier = %({name})s AND {readable}", error))
            conditions.append(f"{alias}.id = %({name}_id)s")
        if team is not None:
            self.params["team"] = team
            lookups.append(("team", "SELECT id FROM catalog_team WHERE name = %(team)s",
                            FieldError("team", f"{team!r} is not a team")))
            conditions.append("EXISTS (SELECT 1 FROM catalog_entity_teams svc_team "
                              "WHERE svc_team.entity_id = svc.id AND svc_team.team_id = %(team_id)s)")
        if lookups:
            with connection.cursor() as cursor:
                cursor.execute("SELECT " + ", ".join(f"({sql})" for _, sql, _ in lookups), self.params)
                found = cursor.fetchone()
            for (name, _, error), pk in zip(lookups, found):
                if pk is None:
                    raise NotFound(error)
                self.params[f"{name}_id"] = pk
        return " AND ".join(conditions) or "TRUE"

    def running_services(self):
        """{running service id: (identifier, service, environment)} of the running services the read may show;
        picks how the deployments of these are read."""
        rows = self.fetch(RUNNING_IDS_SQL)
        narrow = bool(rows) and len(rows) <= NARROW_SHARE * rows[0][4]
        self.deployments_source = DEPLOYMENTS_OF_FEW if narrow else DEPLOYMENTS_OF_MANY
        return {row[0]: row[1:4] for row in rows}

    def fetch(self, sql, **params):
        sql = sql.replace("{deployments}", self.deployments_source).replace("{filters}", self.filters)
        for alias, condition in self.visible.items():
            sql = sql.replace(f"{{visible_{alias}}}", condition)
        with connection.cursor() as cursor:
            cursor.execute(sql, {**self.params, **params})
            return cursor.fetchall()


RUNNING_SERVICES_SQL = f"""
    SELECT rs.identifier, svc.identifier, svc.title, env.identifier, env.properties ->> 'type',
           rs.properties ->> 'version', rs.properties ->> 'commitSha', rs.properties ->> 'jobUrl',
           rs.properties ->> 'deployedBy', rs.properties ->> 'deployedAt', rs.properties ->> 'health',
           {_lock_columns("rs")}, {_lock_columns("env")}
      FROM catalog_entity rs {RUNNING_SERVICE_JOINS}
     WHERE rs.blueprint_id = %(bp_rs)s AND {{visible_rs}} AND {{visible_svc}} AND {{visible_env}} AND {{filters}}
     ORDER BY svc.identifier, {ENVIRONMENT_ORDER}, env.identifier
"""


def running_services_visible_to(user, *, service=None, environment=None, team=None):
    """Every running service the user may see (with its service and environment), ordered by service, then
    environment (production, staging, development, others). `service`/`environment` are identifiers, `team`
    a team owning the service; NotFound names an unknown one."""
    scope = _Scope(user, ("rs", "svc", "env"), service=service, environment=environment, team=team)
    if scope.empty:
        return []
    return [{
        "identifier": row[0],
        "service": {"identifier": row[1], "title": row[2]},
        "environment": {"identifier": row[3], "type": row[4], "lock": _lock(row[16:21])},
        "version": row[5], "commitSha": row[6], "jobUrl": row[7], "deployedBy": row[8], "deployedAt": row[9],
        "health": row[10],
        "lock": _lock(row[11:16]),
    } for row in scope.fetch(RUNNING_SERVICES_SQL)]


DEPLOYMENT_KEYS = ("version", "commitSha", "commitTime", "jobUrl", "status", "deployedBy", "startedAt", "finishedAt")
DEPLOYMENTS_SQL = f"""
    SELECT d.identifier, recent.running_service_id, {", ".join(f"d.properties ->> '{key}'" for key in DEPLOYMENT_KEYS)}
      FROM (SELECT d.id, drs.target_id AS running_service_id, {FINISHED_AT} AS finished_at
              {{deployments}}
               AND (%(since)s::timestamptz IS NULL OR {FINISHED_AT} >= %(since)s)
               AND (%(until)s::timestamptz IS NULL OR {FINISHED_AT} < %(until)s)
             ORDER BY 3 DESC NULLS LAST, d.id DESC
             LIMIT %(limit)s) AS recent  -- a top-N sort of narrow rows; the properties are read for these only
      JOIN catalog_entity d ON d.id = recent.id
     ORDER BY recent.finished_at DESC NULLS LAST, recent.id DESC
"""


def deployments_visible_to(user, *, service=None, environment=None, team=None, since=None, until=None, limit=50):
    """The newest `limit` deployments the user may see, by finishedAt in [since, until) when given."""
    scope = _Scope(user, ("d", "rs", "svc", "env"), service=service, environment=environment, team=team)
    running = {} if scope.empty else scope.running_services()
    if not running:
        return []
    rows = scope.fetch(DEPLOYMENTS_SQL, running_ids=list(running), since=since, until=until, limit=limit)
    return [{"identifier": row[0], **dict(zip(("runningService", "service", "environment"), running[row[1]])),
             **dict(zip(DEPLOYMENT_KEYS, row[2:]))} for row in rows]


# Time to restore: for each failure, the first success of the same running service after it — the earliest
# success among the rows that follow it. The window runs newest first so its frame starts at UNBOUNDED
# PRECEDING and PostgreSQL aggregates it incrementally (a frame starting after the current row would be
# re-aggregated per row). The success may fall after `until` (a failure late in the period is still
# restored by a later deploy); rows before `since` cannot restore anything in the period and are skipped.
# `scoped` is MATERIALIZED so the timestamps are computed once, for the rows the join keeps.
DORA_SQL = f"""
    WITH scoped AS MATERIALIZED (
        SELECT d.id, drs.target_id AS running_service_id, d.properties ->> 'status' AS status,
               {FINISHED_AT} AS finished_at, {COMMIT_TIME} AS commit_time
          {{deployments}}
           AND {FINISHED_AT} >= %(since)s
    ), timed AS (
        SELECT status, finished_at, commit_time,
               MIN(finished_at) FILTER (WHERE status = 'success') OVER (
                   PARTITION BY running_service_id ORDER BY finished_at DESC, id DESC
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS restored_at
          FROM scoped
    ), windowed AS (
        SELECT status, finished_at,
               CASE WHEN status = 'success' AND commit_time IS NOT NULL
                    THEN GREATEST(0, EXTRACT(EPOCH FROM finished_at - commit_time))::float8 END AS lead_seconds,
               CASE WHEN status = 'failure' THEN EXTRACT(EPOCH FROM restored_at - finished_at)::float8 END AS restore_seconds
          FROM timed
         WHERE finished_at < %(until)s
    ), daily AS (
        SELECT (finished_at AT TIME ZONE 'UTC')::date AS day,
               COUNT(*) FILTER (WHERE status = 'success') AS success,
               COUNT(*) FILTER (WHERE status = 'failure') AS failure
          FROM windowed GROUP BY 1
    ), series AS (
        SELECT array_agg(days.day::date ORDER BY days.day) AS days,
               array_agg(COALESCE(daily.success, 0) ORDER BY days.day) AS success,
               array_agg(COALESCE(daily.failure, 0) ORDER BY days.day) AS failure
          FROM generate_series(%(first_day)s::date, %(last_day)s::date, interval '1 day') AS days(day)
          LEFT JOIN daily ON daily.day = days.day::date
    ), totals AS (
        SELECT COUNT(*) FILTER (WHERE status = 'success') AS success,
               COUNT(*) FILTER (WHERE status = 'failure') AS failure,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY lead_seconds) AS lead_median,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY lead_seconds) AS lead_p90,
               COUNT(lead_seconds) AS lead_samples,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY restore_seconds) AS restore_median,
               COUNT(restore_seconds) AS restore_samples,
               COUNT(*) FILTER (WHERE status = 'failure' AND restore_seconds IS NULL) AS unresolved
          FROM windowed
    )
    SELECT totals.*, series.* FROM totals, series
"""


def _seconds(value):
    return None if value is None else round(value, ROUND)


def dora_metrics(user, *, service=None, team=None, environment=None, since, until):
    """The four DORA metrics over the deployments the user may see whose finishedAt is in [since, until):
    deployment frequency (successful deployments), lead time for changes (finishedAt − commitTime of
    successful deployments that carry a commitTime, clock skew below zero counted as 0), change failure
    rate, and time to restore (per failed deployment, until the next successful deployment of the same
    running service — which may come after `until`; a failure with none yet is `unresolved`); plus a
    per-day (UTC) series for charts. One query after the permission look-ups."""
    if until <= since:
        raise ValueError("until must be later than since")
    scope = _Scope(user, ("d", "rs", "svc", "env"), service=service, environment=environment, team=team)
    first_day = since.astimezone(timezone.utc).date()
    last_day = (until - timedelta(microseconds=1)).astimezone(timezone.utc).date()
    running = {} if scope.empty else scope.running_services()
    if not running:
        row = (0, 0, None, None, 0, None, 0, 0, None, None, None)
    else:
        (row,) = scope.fetch(DORA_SQL, running_ids=list(running), since=since, until=until, first_day=first_day,
                             last_day=last_day)
    success, failure, lead_median, lead_p90, lead_samples, restore_median, restore_samples, unresolved = row[:8]
    days, success_series, failure_series = row[8:]
    if days is None:  # nothing to read: the series still covers the period, with zeros
        days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
        success_series = failure_series = [0] * len(days)
    per_day = success / ((until - since).total_seconds() / 86400)
    total = success + failure
    return {
        "period": {"from": instant_text(since), "to": instant_text(until)},
        "filters": {"service": service, "team": team, "environment": environment},
        "deploymentFrequency": {"deployments": success, "perDay": round(per_day, ROUND), "perWeek": round(per_day * 7, ROUND)},
        "leadTimeForChanges": {"medianSeconds": _seconds(lead_median), "p90Seconds": _seconds(lead_p90),
                               "samples": lead_samples},
        "changeFailureRate": {"failed": failure, "total": total, "rate": round(failure / total, ROUND) if total else None},
        "timeToRestore": {"medianSeconds": _seconds(restore_median), "samples": restore_samples, "unresolved": unresolved},
        "series": [{"date": day.isoformat(), "success": s, "failure": f}
                   for day, s, f in zip(days, success_series, failure_series)],
    }


def period_parse(raw_from, raw_to, *, default=None, now=None):
    """The `from`/`to` query values → (since, until), errors naming the parameter. With `default` (a
    timedelta) a missing `to` is now and a missing `from` is `default` before `to`; without, missing is None."""
    since = instant_field(raw_from, "from", query=True) if raw_from not in (None, "") else None
    until = instant_field(raw_to, "to", query=True, end_of_day=True) if raw_to not in (None, "") else None
    if default is not None:
        until = until or now or datetime.now(timezone.utc)
        since = since or until - default
    if since is not None and until is not None:
        if until <= since and raw_to in (None, ""):
            raise ValidationFailed(f"must be earlier than now ({instant_text(until)})", path="from")
        if until <= since:
            raise ValidationFailed(f"must be later than from ({instant_text(since)})", path="to")
        if default is not None and until - since > MAX_PERIOD:
            raise ValidationFailed(f"the period may span at most {MAX_PERIOD.days} days", path="from")
    return since, until
