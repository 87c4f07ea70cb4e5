"""API credentials: a client id and a hashed secret per user, exchanged for short-lived JWTs."""
from django.conf import settings
from django.db import models


class ApiClient(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_clients")
    client_id = models.CharField(max_length=64, unique=True)
    secret_hash = models.CharField(max_length=256)  # Django password hasher format
    is_machine = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The one active token per credential: handed out again while valid.
    token = models.TextField(blank=True, default="")
    token_expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.client_id} ({self.user})"


class OutboxMessage(models.Model):
    """Work to do after a commit (portal/outbox.py): written in the transaction that calls for it, published to
    Celery after commit, claimed by the worker that runs it, re-published by beat until it is done."""

    task = models.CharField(max_length=200)  # a registered Celery task's name
    args = models.JSONField(default=list)
    not_before = models.DateTimeField()  # the countdown's end: not run earlier
    attempts = models.PositiveIntegerField(default=0)  # claims so far
    # handed to the broker (written with the row, for the publish after its commit; None: for the sweep to publish)
    published_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)  # a worker's claim; expired: that worker died
    done_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)  # given up after OUTBOX_MAX_ATTEMPTS
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["not_before"], name="outbox_pending", condition=models.Q(done_at__isnull=True,
                                                                                          failed_at__isnull=True)),
            models.Index(fields=["done_at"], name="outbox_done", condition=models.Q(done_at__isnull=False)),
        ]

    def __str__(self):
        return f"{self.task}{tuple(self.args)!r}"


class OrganizationSettings(models.Model):
    """The organization's settings as `PATCH /v1/organization` records them (one row): which streamer Port's
    execution agent uses (`portAgentStreamerName`: KAFKA publishes agent runs to Kafka) and the organization-wide
    `changelogDestination`."""

    settings = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "organization settings"

    def __str__(self):
        return "Organization settings"


class ChangeLogMessage(models.Model):
    """A change to publish to the change log topic (portal/changelog.py): written in the transaction of the change,
    published in id order, which per key (one entity, one run) is the order the changes committed in."""

    key = models.CharField(max_length=1200)
    value = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_to = models.JSONField(null=True, blank=True)  # {topic, partition, offset}

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["id"], name="changelog_pending", condition=models.Q(published_at__isnull=True))]

    def __str__(self):
        return f"change log {self.id} ({self.key})"
