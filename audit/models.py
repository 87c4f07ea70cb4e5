"""The append-only audit log. Rows are written by `audit.services.audit_record` only."""
from django.db import models

from audit.choices import AuditOrigin, AuditStatus


class AuditEvent(models.Model):
    at = models.DateTimeField(db_index=True)
    # Who: a user (email), an API client (its id) or the system.
    actor = models.CharField(max_length=254, blank=True, default="")
    actor_type = models.CharField(max_length=16, default="user")  # user | client | system
    origin = models.CharField(max_length=16, choices=AuditOrigin.choices, default=AuditOrigin.SYSTEM)
    verb = models.CharField(max_length=100, db_index=True)  # dotted: catalog.entity.updated
    action = models.CharField(max_length=16)  # CREATE | UPDATE | DELETE (Port's audit "action")
    resource_type = models.CharField(max_length=32, db_index=True)
    identifier = models.CharField(max_length=1000, db_index=True)
    blueprint = models.CharField(max_length=100, blank=True, default="", db_index=True)
    run_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    context = models.JSONField(default=dict, blank=True)
    diff = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=AuditStatus.choices, default=AuditStatus.SUCCESS)
    message = models.TextField(blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    # Hash chain: sha256 of the previous event's hash and this event's canonical content.
    previous_hash = models.CharField(max_length=64, blank=True, default="")
    hash = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["resource_type", "identifier"], name="audit_resource")]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.verb} {self.identifier}"
