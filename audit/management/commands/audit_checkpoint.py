"""`manage.py audit_checkpoint [--file FILE]`: append a signed checkpoint of the audit chain's head (beat runs it
every minute as audit_checkpoint_task)."""
import json

from django.core.management.base import BaseCommand

from audit.checkpoints import audit_checkpoint_write


class Command(BaseCommand):
    help = "Append a signed checkpoint of the audit chain's head to AUDIT_CHECKPOINT_FILE (or --file)."

    def add_arguments(self, parser):
        parser.add_argument("--file", metavar="FILE", help="default: settings.AUDIT_CHECKPOINT_FILE")

    def handle(self, *args, file=None, **options):
        line = audit_checkpoint_write(file)
        self.stdout.write(json.dumps(line, sort_keys=True) if line else "head unchanged since the last checkpoint")
