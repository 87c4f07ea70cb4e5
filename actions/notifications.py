"""Slack notifications: what the portal tells whom, and when.

- a run waits for approval → the approvers' channel (NotificationSettings.approvers_channel, else
  SLACK_DEFAULT_CHANNEL): action, requester, inputs, a link to the approval queue;
- a run ends (SUCCESS / FAILURE / DECLINED) → its requester by direct message (`users.lookupByEmail`), else
  the default channel mentioning their email: status, label, a link to the run;
- a TTL is about to expire → the entity's owner, with an "extend" link (`notify_ttl_warning`, called by the
  TTL sweeper through `ttl_warning_notify_task`);
- a teardown failed → the owner and the platform channel (`notify_termination_failed`).

The first three are switchable portal-wide (NotificationSettings, edited in the admin) and per action
(`notifications: {approvalWaiting, runEnded, ttlWarning}` in the action JSON; a key left out is on).
A failed teardown is an alert, not a courtesy: only the global `slack_enabled` switch silences it.

Nothing is sent from a request: `run_changed_notify` subscribes to portal.events RUN_CHANGED (announced in the
writer's transaction) and queues a Celery task there (an outbox row); the tasks call the `notify_*` functions here, which re-read the run and the
switches, so a message reflects what is true when it goes out (an approval already decided is not announced).
"""
import json
import logging
from urllib.parse import quote

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from actions.choices import RunStatus
from actions.models import Action, NotificationSettings, Run
from actions.slack import SlackFailed, SlackNotConfigured, slack_configured, slack_escape, slack_post, slack_user_id
from actions.state import TERMINAL
from audit import choices as audit_choices
from audit.services import audit_record
from portal.errors import ValidationFailed
from portal.datetimes import instant_text

logger = logging.getLogger(__name__)

APPROVAL_WAITING, RUN_ENDED, TTL_WARNING = "approvalWaiting", "runEnded", "ttlWarning"
SETTING_FIELDS = {APPROVAL_WAITING: "approval_waiting", RUN_ENDED: "run_ended", TTL_WARNING: "ttl_warning"}
MAX_INPUTS_SHOWN = 10
MAX_VALUE_CHARS = 200


def notification_enabled(kind, action=None, *, switches=None) -> bool:
    """Slack is configured and on, the notification `kind` is on portal-wide, and `action` does not turn it off."""
    if not slack_configured():
        return False
    switches = switches or NotificationSettings.current()
    if not switches.slack_enabled or not getattr(switches, SETTING_FIELDS[kind]):
        return False
    return action is None or (action.notifications or {}).get(kind, True) is not False


# --- the portal-wide switches (one row, edited in the admin) ---------------------------------------------------

SWITCH_FIELDS = ("slack_enabled", "approval_waiting", "run_ended", "ttl_warning")
CHANNEL_FIELDS = ("approvers_channel", "platform_channel")
SETTINGS_FIELDS = (*SWITCH_FIELDS, "ttl_warning_hours", *CHANNEL_FIELDS)
MAX_WARNING_HOURS = 24 * 30


def notification_settings_json(row) -> dict:
    return {name: getattr(row, name) for name in SETTINGS_FIELDS}


@transaction.atomic
def notification_settings_update(*, actor, values) -> NotificationSettings:
    """Change the given fields of the one NotificationSettings row (created on first save); audited."""
    unknown = set(values) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValidationFailed("not a notification setting", path=sorted(unknown)[0])
    for name in SWITCH_FIELDS:
        if name in values and not isinstance(values[name], bool):
            raise ValidationFailed("must be true or false", path=name)
    for name in CHANNEL_FIELDS:
        if name in values and (not isinstance(values[name], str) or len(values[name]) > 200):
            raise ValidationFailed("must be a Slack channel name or id of at most 200 characters", path=name)
    hours = values.get("ttl_warning_hours", 1)
    if not isinstance(hours, int) or isinstance(hours, bool) or not 1 <= hours <= MAX_WARNING_HOURS:
        raise ValidationFailed(f"must be a whole number of hours from 1 to {MAX_WARNING_HOURS}", path="ttl_warning_hours")
    row = NotificationSettings.objects.select_for_update().order_by("pk").first()
    before = notification_settings_json(row) if row is not None else None
    row = row or NotificationSettings()
    for name, value in values.items():
        setattr(row, name, value.strip() if isinstance(value, str) else value)
    row.save()
    after = notification_settings_json(row)
    if after != before:
        audit_record(actor=actor, verb=audit_choices.NOTIFICATION_SETTINGS_UPDATED,
                     action=audit_choices.AuditAction.UPDATE if before else audit_choices.AuditAction.CREATE,
                     resource_type="notification_settings", identifier="notifications", before=before, after=after)
    return row


# --- links and text -------------------------------------------------------------------------------------------

def _base_url() -> str:
    return settings.PORTAL_BASE_URL.rstrip("/")


def approvals_url() -> str:
    return f"{_base_url()}/approvals/"


def run_url(run_id) -> str:
    return f"{_base_url()}/runs/{quote(run_id)}/"


def extend_ttl_url(entity) -> str:
    """The run form of the blueprint's built-in "Extend TTL" action for this entity (the page is issue 6's)."""
    from actions.services.actions import extend_ttl_action_identifier

    action = quote(extend_ttl_action_identifier(entity.blueprint.identifier), safe="")
    return f"{_base_url()}/actions/{action}/run?entity={quote(entity.identifier, safe='')}"


def _link(url, text) -> str:
    return f"<{url}|{slack_escape(text)}>"


def _value_text(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return slack_escape(text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS - 1] + "…")


def _inputs_text(properties) -> str:
    if not properties:
        return "No inputs."
    items = list(properties.items())
    lines = [f"• {slack_escape(key)}: {_value_text(value)}" for key, value in items[:MAX_INPUTS_SHOWN]]
    if len(items) > MAX_INPUTS_SHOWN:
        lines.append(f"• …and {len(items) - MAX_INPUTS_SHOWN} more")
    return "Inputs:\n" + "\n".join(lines)


def _entity_name(entity) -> str:
    return slack_escape(f"{entity.blueprint.title or entity.blueprint.identifier} {entity.title or entity.identifier}")


# --- delivery -------------------------------------------------------------------------------------------------

def _post(channel, text) -> bool:
    try:
        slack_post(channel, text)
    except (SlackFailed, SlackNotConfigured) as exc:
        logger.warning("Slack notification to %s not sent: %s", channel, exc)
        return False
    return True


def _default_channel() -> str:
    return settings.SLACK_DEFAULT_CHANNEL


def _slack_user(email) -> str | None:
    if not email:
        return None
    try:
        return slack_user_id(email)
    except (SlackFailed, SlackNotConfigured) as exc:
        logger.warning("Slack lookup of %s failed: %s", email, exc)
        return None


def _to_user(email, text) -> bool:
    """A direct message to the Slack user with `email`; else the default channel, naming the email."""
    user_id = _slack_user(email)
    if user_id:
        return _post(user_id, text)
    channel = _default_channel()
    if not channel:
        logger.warning("Slack notification for %s not sent: no Slack user and no SLACK_DEFAULT_CHANNEL", email or "nobody")
        return False
    return _post(channel, f"{slack_escape(email)}: {text}" if email else text)


# --- runs -----------------------------------------------------------------------------------------------------

def run_changed_notify(event) -> None:
    """portal.events subscriber (RUN_CHANGED, in the transaction): queue the message a transition calls for."""
    if not slack_configured():
        return
    from actions.tasks import run_approval_waiting_notify_task, run_ended_notify_task
    from portal.outbox import outbox_enqueue

    after = event["after"]
    before = event.get("before") or {}
    status, previous = after["status"], before.get("status")
    if status == previous:
        return
    if status == RunStatus.WAITING_FOR_APPROVAL:
        outbox_enqueue(run_approval_waiting_notify_task, [event["runId"]])
    elif status in TERMINAL and previous not in TERMINAL:
        outbox_enqueue(run_ended_notify_task, [event["runId"]])


def _run(run_id):
    return Run.objects.select_related("action", "requested_by").filter(pk=run_id).first()


def notify_approval_waiting(run_id) -> bool:
    run = _run(run_id)
    if run is None or run.status != RunStatus.WAITING_FOR_APPROVAL:
        return False  # decided (or gone) before the message went out
    switches = NotificationSettings.current()
    if not notification_enabled(APPROVAL_WAITING, run.action, switches=switches):
        return False
    channel = switches.approvers_channel or _default_channel()
    if not channel:
        logger.warning("run %s: approval notification not sent: no approvers' channel and no SLACK_DEFAULT_CHANNEL", run_id)
        return False
    requester = run.requested_by.email if run.requested_by_id else "the portal"
    text = f"Run of *{slack_escape(run.action.title)}* requested by {slack_escape(requester)} is waiting for approval."
    if run.entity_identifier:
        text += f"\nEntity: {slack_escape(run.entity_title or run.entity_identifier)}"
    text += f"\n{_inputs_text(run.properties)}\n{_link(approvals_url(), 'Open the approval queue')}"
    return _post(channel, text)


def notify_run_ended(run_id) -> bool:
    run = _run(run_id)
    if run is None or run.status not in TERMINAL or run.requested_by_id is None:
        return False  # runs nobody requested (automations) have nobody to tell
    if not notification_enabled(RUN_ENDED, run.action):
        return False
    text = f"Your run of *{slack_escape(run.action.title)}* ended: *{run.status}*"
    if run.status_label:
        text += f" — {slack_escape(run.status_label)}"
    text += f"\n{_link(run_url(run.id), f'View run {run.id}')}"
    return _to_user(run.requested_by.email, text)


# --- TTL ------------------------------------------------------------------------------------------------------

def _creating_run(entity):
    return (Run.objects.select_related("action", "requested_by").filter(result_entity=entity)
            .order_by("created_at").first())


def entity_owner_email(entity, creating_run=None) -> str:
    """Who an environment belongs to: the requester of the run that created it, else whoever created it."""
    run = creating_run or _creating_run(entity)
    if run is not None and run.requested_by_id:
        return run.requested_by.email
    if entity.run_id:
        run = Run.objects.select_related("requested_by").filter(pk=entity.run_id).first()
        if run is not None and run.requested_by_id:
            return run.requested_by.email
    return entity.created_by if "@" in entity.created_by else ""


def _ttl_action(entity, timer_property, creating_run):
    if creating_run is not None and (creating_run.action.ttl or {}).get("property") == timer_property:
        return creating_run.action
    return (Action.objects.filter(operation="CREATE", blueprint_identifier=entity.blueprint.identifier,
                                  ttl__property=timer_property).order_by("identifier").first())


def _in_words(delta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds >= 2 * 3600:
        return f"in about {round(seconds / 3600)} hours"
    if seconds >= 120:
        return f"in about {round(seconds / 60)} minutes"
    return "in less than two minutes"


def notify_ttl_warning(entity_id, timer_property) -> bool:
    """Tell the owner that `timer_property` of the entity is about to expire, with an extend link. The caller
    (the TTL sweeper) decides when, and makes it once per expiry (Timer.warned_at)."""
    from catalog.models import Entity, Timer

    entity = Entity.objects.select_related("blueprint").filter(pk=entity_id).first()
    timer = Timer.objects.filter(entity_id=entity_id, property=timer_property).first() if entity else None
    if timer is None:
        return False
    creating_run = _creating_run(entity)
    if not notification_enabled(TTL_WARNING, _ttl_action(entity, timer_property, creating_run)):
        return False
    text = (f"{_entity_name(entity)} expires {_in_words(timer.expires_at - timezone.now())} "
            f"({instant_text(timer.expires_at)}) and will be torn down.\n{_link(extend_ttl_url(entity), 'Extend it')}")
    return _to_user(entity_owner_email(entity, creating_run), text)


def notify_termination_failed(entity_id, run_id) -> bool:
    """Tell the owner and the platform channel that the teardown run failed and the entity stays."""
    from catalog.models import Entity

    if not slack_configured():
        return False
    switches = NotificationSettings.current()
    if not switches.slack_enabled:
        return False
    entity = Entity.objects.select_related("blueprint").filter(pk=entity_id).first()
    if entity is None:
        return False
    run = _run(run_id)
    reason = slack_escape(run.status_label) if run is not None and run.status_label else "no reason given"
    text = (f"Teardown of {_entity_name(entity)} failed: {reason}. It stays in the catalog, marked as failed "
            f"to terminate.\n{_link(run_url(run_id), f'View run {run_id}')}")
    owner = entity_owner_email(entity)
    user_id = _slack_user(owner)
    sent = _post(user_id, text) if user_id else False
    channel = switches.platform_channel or _default_channel()
    if not channel:
        logger.warning("entity %s: teardown failure not posted: no platform channel and no SLACK_DEFAULT_CHANNEL", entity_id)
        return sent
    # An owner Slack does not know is named in the platform channel's message instead.
    return _post(channel, text if user_id or not owner else f"{slack_escape(owner)}: {text}") or sent
