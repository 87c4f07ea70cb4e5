"""The read-only panels of an integration's admin page: its recent resyncs with their per-kind counts, the
examples of each kind it last saw (next to the mapping written against them), and its recent log lines."""
import json

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from catalog.selectors.integrations import integration_recent_logs, integration_recent_resyncs

RECENT_RESYNCS, RECENT_LOG_LINES = 10, 100
PRE = "max-height: 24em; overflow: auto; font-size: 12px; white-space: pre-wrap;"


def _json(value):
    return json.dumps(value, ensure_ascii=False, indent=2)


def kind_counts(metrics):
    """Each kind's metrics as Ocean reported them, compact."""
    return "; ".join(f"{kind}: {json.dumps(value.get('metrics', value), separators=(',', ':'))}"
                     for kind, value in sorted(metrics.items()))


class IntegrationAdminPanels:
    @admin.display(description="recent resyncs")
    def recent_resyncs(self, obj):
        rows = integration_recent_resyncs(obj, limit=RECENT_RESYNCS)
        if not rows:
            return "None yet."
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                                ((r.status, r.started_at, r.ended_at or "-", kind_counts(r.metrics)) for r in rows))
        return format_html("<table><tr><th>status</th><th>started</th><th>ended</th><th>counts</th></tr>{}</table>", body)

    @admin.display(description="kind examples")
    def kind_examples(self, obj):
        examples = list(obj.kind_examples.all())
        if not examples:
            return "None yet (sent by the integration during a resync)."
        return format_html_join("", '<p><b>{}</b></p><pre style="{}">{}</pre>',
                                ((e.kind, PRE, _json(e.examples)) for e in examples))

    @admin.display(description="log lines")
    def recent_logs(self, obj):
        lines = integration_recent_logs(obj, limit=RECENT_LOG_LINES)
        if not lines:
            return "None yet."
        text = "\n".join(f"{line.at:%Y-%m-%d %H:%M:%S} {line.level:<7} {line.message}" for line in lines)
        return format_html('<pre style="{}">{}</pre>', PRE, text)
