"""The append-only audit log. Rows are written by `audit.services.audit_record` and `audit.chain.audit_seal` only."""
from django.db import models

from audit.choices import AuditStatus
from portal.actor import AuditOrigin


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

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["resource_type", "identifier"], name="audit_resource")]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.verb} {self.identifier}"


class AuditPending(models.Model):
    """An event committed but not yet sealed; written with the event, deleted by the sealer."""

    event = models.OneToOneField(AuditEvent, primary_key=True, on_delete=models.DO_NOTHING, related_name="+")


class AuditSeal(models.Model):
    """The event's place in the hash chain: `hash` = sha256(`previous_hash` + the event's canonical JSON).

    Written after the event's transaction committed, by one sealer at a time (audit/chain.py), so writers never
    wait on the chain; positions count 1, 2, 3 … without gaps."""

    position = models.BigIntegerField(unique=True)
    event = models.OneToOneField(AuditEvent, on_delete=models.PROTECT, related_name="seal")
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["position"]

    def __str__(self):
        return f"#{self.position} {self.hash[:12]}"
