"""`manage.py audit_export [--since POSITION|DATE] [--output FILE]`: the audit log as JSON lines for a SIEM,
one sealed event a line with its chain position and hash, in chain order."""
import json

from django.core.management.base import BaseCommand, CommandError

from audit.chain import event_values, sealed_events
from portal.datetimes import NotAnInstant, instant_parse


def _since(value):
    """(position to start after, earliest instant): a number is a position, anything else a date-time."""
    if value is None:
        return 0, None
    if value.isdigit():
        return max(int(value) - 1, 0), None
    try:
        return 0, instant_parse(value, query=True)
    except NotAnInstant as exc:
        raise CommandError(f"--since: a chain position or a date-time, got {value!r} ({exc})")


class Command(BaseCommand):
    help = "Write the sealed audit log as JSON lines (position, hash, previous_hash, event)."

    def add_arguments(self, parser):
        parser.add_argument("--since", metavar="POSITION|DATE", help="from this chain position, or events at or after this date")
        parser.add_argument("--output", metavar="FILE", help="default: standard output")

    def handle(self, *args, since=None, output=None, **options):
        after_position, since_at = _since(since)
        out = open(output, "w") if output else self.stdout
        try:
            count = 0
            for (position, _, previous_hash, digest), event in sealed_events(after_position=after_position, since=since_at):
                if event is None:
                    raise CommandError(f"position {position}: its event is missing; run audit_verify")
                out.write(json.dumps({"position": position, "hash": digest, "previous_hash": previous_hash,
                                      "event": event_values(event)}, sort_keys=True) + "\n")
                count += 1
        finally:
            if output:
                out.close()
        if output:
            self.stdout.write(f"{count} events written to {output}")
