"""`manage.py audit_verify [--checkpoint FILE]`: walk the whole audit chain; exit 1 naming the first fault."""
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from audit.chain import UNSEALED_GRACE, audit_chain_verify
from audit.checkpoints import checkpoints_read


class Command(BaseCommand):
    help = "Verify the audit log's hash chain (and, with --checkpoint, that it still reaches every signed checkpoint)."

    def add_arguments(self, parser):
        parser.add_argument("--checkpoint", metavar="FILE", help="checkpoints written by audit_checkpoint (JSON lines)")
        parser.add_argument("--unsealed-minutes", type=float, default=UNSEALED_GRACE.total_seconds() / 60,
                            help="an event unsealed for longer than this is a fault (default: %(default)s)")

    def handle(self, *args, checkpoint=None, unsealed_minutes, **options):
        checkpoints = {}
        if checkpoint:
            try:
                checkpoints, fault = checkpoints_read(checkpoint)
            except OSError as exc:
                raise CommandError(f"--checkpoint: {exc}")
            if fault:
                raise CommandError(f"audit checkpoints refused: {fault}")
        result = audit_chain_verify(checkpoints=checkpoints, unsealed_grace=timedelta(minutes=unsealed_minutes))
        if result.fault:
            raise CommandError(f"audit chain broken at {result.fault} ({result.length} seals before it are intact)")
        agreed = f"; {len(checkpoints)} checkpoint position(s) agree" if checkpoint else ""
        self.stdout.write(f"audit chain intact: {result.length} events, head hash {result.head_hash or '-'}{agreed}")
