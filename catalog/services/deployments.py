"""CI deployment reports: check the locks and record the deployment as one atomic step.

A deployment is refused (423) when the environment or the running service `<service>-<environment>` is
locked. The check and the record happen in one transaction holding row locks that conflict with the row
lock every entity write of the environment or running service takes (catalog/services/row_locks.py), so a lock that commits while deploys are in flight never
lets a later deploy through: deploys already past the check commit before the lock can, the others see it.
"""
import secrets
from dataclasses import replace
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from audit import choices as audit_choices
from audit.services import audit_record_failure
from catalog.access import blueprint_access, is_admin, readable_blueprint_ids
from catalog.identifiers import check_entity_identifier
from catalog.models import Blueprint
from catalog.services.deployment_writes import deployment_report_write, entity_rows_read_passes
from catalog.services.row_locks import KEY_SHARE, NO_KEY_UPDATE, blueprints_lock_kept
from catalog.validation import format_checker
from portal.errors import Forbidden, NotFound, PortalError, ValidationFailed
from portal.prepared_statements import execute_prepared
from portal.datetimes import instant_field, instant_text
from portal.retry import retry_on_conflict

ENVIRONMENT, RUNNING_SERVICE, DEPLOYMENT, COMPONENT = "environment", "runningService", "deployment", "Component"
STATUSES = ("success", "failure")
REQUIRED_FIELDS = ("service", "environment", "version", "commitSha", "jobUrl")
OPTIONAL_FIELDS = ("commitTime", "status", "deployedBy")


class Locked(PortalError):
    """423 with the lock that refused the request, rendered as `lock` next to the envelope."""

    status = 423
    code = "locked"


# The lock keys of an entity row, as text (the Django backend hands raw jsonb back unparsed).
LOCK_COLUMNS = ("{t}.properties ->> 'locked', {t}.properties ->> 'lockReason', "
                "{t}.properties ->> 'lockedBy', {t}.properties ->> 'lockedAt'")


def _lock_properties(columns):
    locked, reason, by, at = columns
    return {"locked": locked == "true", "lockReason": reason, "lockedBy": by, "lockedAt": at}


def lock_of(scope, properties):
    return {"scope": scope, "reason": properties.get("lockReason"), "by": properties.get("lockedBy"),
            "at": properties.get("lockedAt")}


def locked_error(scope, identifier, properties):
    lock = lock_of(scope, properties)
    what = f"Environment {identifier!r}" if scope == "environment" else f"Service {identifier!r}"
    reason = f": {lock['reason']}" if lock["reason"] else ""
    by = f" (locked by {lock['by']})" if lock["by"] else ""
    return Locked(f"{what} is locked{reason}{by}.", details={"lock": lock})


def running_service_identifier(service, environment):
    return f"{service}-{environment}"


def _parse(data, actor):
    if not isinstance(data, dict):
        raise ValidationFailed("must be a JSON object", path="body")
    unknown = sorted(set(data) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise ValidationFailed("is not a deployment field", path=unknown[0])
    for key in REQUIRED_FIELDS:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ValidationFailed("is required (a non-empty string)", path=key)
    for key in OPTIONAL_FIELDS:
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ValidationFailed("must be a string", path=key)
    check_entity_identifier(data["service"], "service")
    check_entity_identifier(data["environment"], "environment")
    if not format_checker.conforms(data["jobUrl"], "url"):
        raise ValidationFailed(f"{data['jobUrl']!r} is not a URL", path="jobUrl")
    commit_time = data.get("commitTime")
    if commit_time is not None:
        commit_time = instant_text(instant_field(commit_time, "commitTime"))
    status = "success" if data.get("status") is None else data["status"]
    if status not in STATUSES:
        raise ValidationFailed(f"must be one of {', '.join(STATUSES)}, got {status!r}", path="status")
    return {**data, "commitTime": commit_time, "status": status, "deployedBy": data.get("deployedBy") or actor.label}


def _blueprints_lock():
    """The four blueprints a report writes or relates to, FOR SHARE (step 2 of row_locks.py's order)."""
    found = blueprints_lock_kept([ENVIRONMENT, RUNNING_SERVICE, DEPLOYMENT, COMPONENT])  # definitions read only
    for identifier in (ENVIRONMENT, RUNNING_SERVICE, DEPLOYMENT, COMPONENT):
        if identifier not in found:
            raise NotFound(f"Blueprint {identifier!r} is not in the catalog; install the starter catalog first.")
    return found


@retry_on_conflict
def deployment_record(*, actor, data):
    """Record one CI deployment report; returns (deployment entity, running service entity).
    Raises Locked (423) when the environment or the running service is locked; the refusal is audited."""
    parsed = _parse(data, actor)
    try:
        return _record(actor, parsed)
    except Locked as refusal:
        # The refused transaction rolled back; the refusal is recorded in a transaction of its own.
        audit_record_failure(
            actor=actor, verb=audit_choices.DEPLOYMENT_REFUSED, action=audit_choices.AuditAction.CREATE, resource_type="entity",
            identifier=running_service_identifier(parsed["service"], parsed["environment"]), blueprint=DEPLOYMENT,
            after={key: parsed.get(key) for key in REQUIRED_FIELDS + OPTIONAL_FIELDS},
            context={"lock": refusal.details["lock"]}, message=refusal.message,
        )
        raise


@transaction.atomic
def _record(actor, data):
    # Lock order (row_locks.py): the blueprints FOR SHARE; then one sorted pass over the entity rows: the Component
    # FOR KEY SHARE, the environment and the running service FOR NO KEY UPDATE (one statement each strength); a new
    # running service is inserted after (deployment_writes.py). The environment row serializes the reports to one environment (a first report of a running service included) and queues lock changes fairly:
    # FOR NO KEY UPDATE, not FOR SHARE, as PostgreSQL lets a new share locker past a transaction queued for FOR
    # UPDATE, so under a continuous stream of reports a lock change would wait until the stream stops.
    blueprints = _blueprints_lock()
    if actor.user is not None and not blueprint_access(actor.user, blueprints[DEPLOYMENT]).allows("register"):
        raise Forbidden("You may not report deployments (register permission on blueprint 'deployment').")
    # Permission was checked once above; the entity writes below run on the caller's behalf (attributed to
    # them in the audit log) without needing separate grants on runningService.
    writer = replace(actor, user=None, client_id=actor.label)
    service, environment = data["service"], data["environment"]
    rs_identifier = running_service_identifier(service, environment)
    component_key, environment_key = (COMPONENT, service), (ENVIRONMENT, environment)
    rs_key = (RUNNING_SERVICE, rs_identifier)
    try:
        check_entity_identifier(rs_identifier, "service")
    except PortalError:  # refused below, after the environment and the service are found, as before
        rs_key = None
    # one statement, two passes in row_locks.py's order: the Component, then the environment and the running service
    components, rows = entity_rows_read_passes(
        [([component_key], KEY_SHARE, False), ([environment_key, *([rs_key] if rs_key else [])], NO_KEY_UPDATE, True)],
        blueprints=blueprints)
    component = components.get(component_key)
    environment_row, running_row = rows.get(environment_key), rows.get(rs_key)
    if environment_row is None:
        raise NotFound(f"{environment!r} is not an environment in the catalog", path="environment")
    if environment_row["properties"].get("locked") is True:
        raise locked_error("environment", environment, environment_row["properties"])
    if component is None:
        raise NotFound(f"{service!r} is not a Component in the catalog", path="service")
    check_entity_identifier(rs_identifier, "service")
    if running_row is not None and running_row["properties"].get("locked") is True:
        raise locked_error("service", rs_identifier, running_row["properties"])

    now = instant_text(timezone.now())
    running = {"blueprint": RUNNING_SERVICE, "identifier": rs_identifier,
               "relations": {"service": service, "environment": environment}, "properties": {}}
    if data["status"] == "success":
        running["properties"] = {"version": data["version"], "commitSha": data["commitSha"], "jobUrl": data["jobUrl"],
                                 "deployedBy": data["deployedBy"], "deployedAt": now}
    stamp = int(datetime.now().timestamp() * 1000)
    deployment = {
        "blueprint": DEPLOYMENT, "identifier": f"{rs_identifier}-{data['version']}-{stamp}-{secrets.token_hex(2)}",
        "title": f"{service} {data['version']} to {environment}",
        "relations": {"runningService": rs_identifier},
        "properties": {"version": data["version"], "commitSha": data["commitSha"], "commitTime": data.get("commitTime"),
                       "jobUrl": data["jobUrl"], "status": data["status"], "deployedBy": data["deployedBy"],
                       "startedAt": now, "finishedAt": now},
    }
    check_entity_identifier(deployment["identifier"], "version")

    def refuse_locked(properties):
        if properties.get("locked") is True:
            raise locked_error("service", rs_identifier, properties)

    return deployment_report_write(
        actor=writer, blueprints=blueprints, running=running, running_row=running_row, deployment=deployment,
        refuse_locked=refuse_locked, target_ids={component_key: component["id"], environment_key: environment_row["id"]})


LOCKS_SQL = f"""
    SELECT {LOCK_COLUMNS.format(t="env")}, {LOCK_COLUMNS.format(t="rs")}
      FROM catalog_blueprint envbp
      JOIN catalog_entity env ON env.blueprint_id = envbp.id AND env.identifier = %s
      LEFT JOIN catalog_blueprint rsbp ON rsbp.identifier = %s
      LEFT JOIN catalog_entity rs ON rs.blueprint_id = rsbp.id AND rs.identifier = %s
     WHERE envbp.identifier = %s
"""


LOCK_ROW = 8  # LOCKS_SQL's columns: the environment's LOCK_COLUMNS, then the running service's


def lock_params(service, environment):
    """LOCKS_SQL's parameters, in placeholder order."""
    return [environment, RUNNING_SERVICE, running_service_identifier(service, environment), ENVIRONMENT]


# LOCKS_SQL with the caller's token check riding in it (portal/api/authentication.py): one row whatever it finds,
# `found` false for an unknown environment, the check's columns at the end.
LOCKS_WITH_TOKEN_CHECK_SQL = ("SELECT locks.*, auth.* FROM (SELECT) AS one"
                              " LEFT JOIN (SELECT true AS found, l.* FROM ({locks}) AS l) AS locks ON true"
                              " LEFT JOIN ({check}) AS auth ON true")


def lock_find(*, user, service, environment, token_check=None):
    """The lock refusing deploys of `service` to `environment` (environment lock first), or None — one prepared
    statement (portal/prepared_statements.py), as CI asks this on every pipeline run. Forbidden unless `user` may
    read environments and running services; NotFound for an unknown environment. `token_check`: the caller's pending
    TokenCheck, `user` the user it hints at: the statement runs it too, and what it found is answered only after
    the check, for the user the check found (401, then 403, then 404 or the lock)."""
    riding = token_check if token_check is not None and not token_check.resolved else None
    sql, params = LOCKS_SQL, lock_params(service, environment)
    if riding is not None:
        sql, params = LOCKS_WITH_TOKEN_CHECK_SQL.format(locks=LOCKS_SQL, check=riding.sql), [*params, *riding.params]
    with connection.cursor() as cursor:
        execute_prepared(cursor, "lock_find", sql, params)
        row = cursor.fetchone()
    if riding is not None:  # 401 before anything else; the user found is the one the rest answers
        found, locks, checked = row[0], row[1:LOCK_ROW + 1], row[LOCK_ROW + 1:]
        user = riding.resolve(checked)
        row = locks if found else None
    _check_may_read_locks(user)
    if row is None:
        raise NotFound(f"{environment!r} is not an environment in the catalog", path="environment")
    environment_properties, service_properties = _lock_properties(row[:4]), _lock_properties(row[4:])
    if environment_properties["locked"]:
        return locked_error("environment", environment, environment_properties)
    if service_properties["locked"]:
        return locked_error("service", running_service_identifier(service, environment), service_properties)
    return None


def _check_may_read_locks(user):
    """Forbidden unless `user` may read environments and running services in full (what a lock check tells)."""
    if is_admin(user):
        return
    full, _owned = readable_blueprint_ids(user)
    wanted = Blueprint.objects.filter(identifier__in=[ENVIRONMENT, RUNNING_SERVICE]).values_list("id", flat=True)
    if not all(pk in full for pk in wanted):
        raise Forbidden("You may not read environments and running services.")
