"""Celery tasks of the audit app (beat: portal/settings.py CELERY_BEAT_SCHEDULE)."""
from celery import shared_task


@shared_task
def audit_seal_task():
    """Seal events whose on-commit sealing was skipped (another sealer held the lock) or lost (a crash)."""
    from audit.chain import audit_seal

    return audit_seal()


@shared_task
def audit_checkpoint_task():
    """A signed checkpoint of the chain's head, in AUDIT_CHECKPOINT_FILE and the log."""
    from audit.checkpoints import audit_checkpoint_write

    return audit_checkpoint_write()
