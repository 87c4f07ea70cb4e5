"""Self-service actions, their runs, run logs, approval decisions, and the secrets templates may use."""
import json

from django.conf import settings
from django.db import models

from actions.choices import Decision, RunOrigin, RunStatus


class Action(models.Model):
    """Port's action JSON, split into columns for what the portal filters on."""

    identifier = models.CharField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    icon = models.CharField(max_length=100, blank=True, default="")
    description = models.TextField(blank=True, default="")
    trigger = models.JSONField(default=dict)
    invocation_method = models.JSONField(default=dict)
    # The same JSON as written: jsonb reorders keys, and webhook bodies go out in the template's order.
    invocation_method_text = models.TextField(blank=True, default="")
    required_approval = models.JSONField(default=bool)  # callable: False
    approval_notification = models.JSONField(null=True, blank=True)
    publish = models.BooleanField(default=True)
    # Our extensions (validated with the rest of the definition).
    quota = models.JSONField(null=True, blank=True)
    approval_timeout_seconds = models.PositiveIntegerField(null=True, blank=True)
    run_timeout_seconds = models.PositiveIntegerField(null=True, blank=True)
    ttl = models.JSONField(null=True, blank=True)
    # Per-action Slack notification switches: {"approvalWaiting": bool, "runEnded": bool, "ttlWarning": bool}.
    notifications = models.JSONField(null=True, blank=True)
    # Derived from `trigger`, for filtering.
    trigger_type = models.CharField(max_length=16, db_index=True)
    operation = models.CharField(max_length=8, blank=True, default="", db_index=True)
    blueprint_identifier = models.CharField(max_length=100, blank=True, default="", db_index=True)
    # ownedByTeam flags for execute/approve, which guardian rows cannot hold.
    permission_settings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.CharField(max_length=254, blank=True, default="")
    updated_by = models.CharField(max_length=254, blank=True, default="")

    class Meta:
        ordering = ["identifier"]
        permissions = [
            ("execute_action", "Run the action"),
            ("approve_action", "Approve or decline runs of the action"),
        ]

    def __str__(self):
        return self.identifier

    @property
    def invocation(self):
        """The invocation method with its keys in the order they were written."""
        return json.loads(self.invocation_method_text) if self.invocation_method_text else (self.invocation_method or {})


class Run(models.Model):
    id = models.CharField(primary_key=True, max_length=40)  # "r_<random>", as Port's
    action = models.ForeignKey(Action, on_delete=models.PROTECT, related_name="runs")
    blueprint_identifier = models.CharField(max_length=100, blank=True, default="", db_index=True)
    entity = models.ForeignKey("catalog.Entity", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    entity_identifier = models.CharField(max_length=1000, blank=True, default="", db_index=True)
    entity_title = models.CharField(max_length=1000, blank=True, default="")
    result_entity = models.ForeignKey("catalog.Entity", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="created_by_runs")
    properties = models.JSONField(default=dict, blank=True)  # the validated inputs
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="runs")
    run_as_by = models.CharField(max_length=254, blank=True, default="")  # the admin who ran it as the requester
    origin = models.CharField(max_length=16, choices=RunOrigin.choices, default=RunOrigin.API)
    status = models.CharField(max_length=24, choices=RunStatus.choices, db_index=True)
    status_label = models.CharField(max_length=500, blank=True, default="")
    links = models.JSONField(default=list, blank=True)
    summary = models.TextField(blank=True, default="")
    external_run_id = models.CharField(max_length=200, blank=True, default="", db_index=True)
    required_approval = models.JSONField(default=bool)  # snapshot at request time
    payload = models.JSONField(null=True, blank=True)  # what was sent to the backend (secrets redacted)
    response = models.JSONField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # An IN_PROGRESS run with dispatched_at NULL has not been handed to its backend yet.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # The deadline of the delivery attempt under way (actions/services/runs.py), and when the next one is due.
    delivery_lease_until = models.DateTimeField(null=True, blank=True, db_index=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Where a Kafka backend's publish landed, once the broker acknowledged it: {topic, partition, offset, at}.
    published_to = models.JSONField(null=True, blank=True)
    # Set by a terminationStatus log: the status is final even for PATCHes.
    status_locked = models.BooleanField(default=False)
    approval_deadline = models.DateTimeField(null=True, blank=True)
    # Execution agent (pull): a claim is invisible to other agents until it expires unacked.
    agent_installation_id = models.CharField(max_length=200, blank=True, default="")
    agent_claim_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    agent_acked_at = models.DateTimeField(null=True, blank=True)
    # Automations: the event that fired this run, and how many automations deep it is (loop guard).
    trigger_event = models.JSONField(null=True, blank=True)
    automation_depth = models.PositiveSmallIntegerField(default=0)
    # The entity this run tears down when it is a TTL termination (kept until the run succeeds).
    terminates_entity = models.ForeignKey("catalog.Entity", null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="termination_runs")
    timeout_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "dispatched_at"], name="run_outbox"),
            models.Index(fields=["action", "requested_by", "created_at"], name="run_quota"),
        ]

    def __str__(self):
        return self.id


class RunLog(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="logs")
    message = models.TextField()
    termination_status = models.CharField(max_length=16, blank=True, default="")
    status_label = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class Approval(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="approvals")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    description = models.TextField(blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["run", "approver"], name="approval_one_per_approver")]


class NotificationSettings(models.Model):
    """Portal-wide Slack notification switches (one row, edited in the admin); actions can turn each off
    with `notifications: {approvalWaiting, runEnded, ttlWarning}` in their JSON."""

    slack_enabled = models.BooleanField(default=True)
    approval_waiting = models.BooleanField(default=True, help_text="A run waits for approval: tell the approvers' channel.")
    run_ended = models.BooleanField(default=True, help_text="A run ends: tell the requester.")
    ttl_warning = models.BooleanField(default=True, help_text="A TTL is about to expire: tell the owner.")
    approvers_channel = models.CharField(max_length=200, blank=True, default="", help_text="Empty: SLACK_DEFAULT_CHANNEL.")
    platform_channel = models.CharField(max_length=200, blank=True, default="", help_text="Failed teardowns and lock changes.")
    ttl_warning_hours = models.PositiveIntegerField(default=24)

    class Meta:
        verbose_name_plural = "notification settings"

    def __str__(self):
        return "Notification settings"

    @classmethod
    def current(cls):
        return cls.objects.order_by("pk").first() or cls()


class Secret(models.Model):
    """Admin-managed secrets for templates (`.secrets.NAME`); the value is stored encrypted."""

    name = models.CharField(max_length=100, unique=True)
    value_encrypted = models.TextField()
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.name
