"""The audit log in the admin: read-only for everyone, superusers included (STYLE rule 7)."""
import json

from django.contrib import admin
from django.db.models import Q
from django.utils.html import format_html, format_html_join

from audit.choices import AuditAction
from audit.models import AuditEvent, AuditSeal
from audit.selectors import PORT_RESOURCES
from portal.read_only_admin import ReadOnlyAdmin

PRE_STYLE = ("font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; white-space: pre-wrap; "
             "margin: 0; max-width: 60em;")


def _pretty(value):
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


class ResourceTypeFilter(admin.SimpleListFilter):
    """A fixed list rather than Django's SELECT DISTINCT, which would read the whole log on every page."""

    title = "resource type"
    parameter_name = "resource_type"

    def lookups(self, request, model_admin):
        return [(name, name) for name in (*PORT_RESOURCES, "api_client")]

    def queryset(self, request, queryset):
        return queryset.filter(resource_type=self.value()) if self.value() else queryset


class ActionFilter(admin.SimpleListFilter):
    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return AuditAction.choices

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "verb", "resource_type", "identifier", "blueprint", "actor", "origin", "status")
    list_filter = (ResourceTypeFilter, ActionFilter, "status", "origin")
    search_fields = ("identifier",)
    search_help_text = "Exact identifier or request id."
    date_hierarchy = "at"
    ordering = ("-id",)
    show_full_result_count = False
    list_per_page = 100
    fieldsets = (
        (None, {"fields": ("at", "verb", "action", "status", "message")}),
        ("What", {"fields": ("resource_type", "identifier", "blueprint", "run_id", "context_display")}),
        ("Who", {"fields": ("actor", "actor_type", "origin", "request_id")}),
        ("Change", {"fields": ("changed_keys", "diff_display")}),
        ("Integrity", {"fields": ("seal_position", "seal_previous_hash", "seal_hash"), "classes": ("collapse",)}),
    )
    readonly_fields = ("at", "verb", "action", "status", "message", "resource_type", "identifier", "blueprint", "run_id",
                       "context_display", "actor", "actor_type", "origin", "request_id", "changed_keys", "diff_display",
                       "seal_position", "seal_previous_hash", "seal_hash")

    def get_search_results(self, request, queryset, search_term):
        """Exact matches on indexed columns: a substring search over the whole log would scan it."""
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(identifier=term) | Q(request_id=term)), False

    @admin.display(description="chain position")
    def seal_position(self, event):
        seal = AuditSeal.objects.filter(event=event).first()
        return seal.position if seal else "not sealed yet"

    @admin.display(description="previous hash")
    def seal_previous_hash(self, event):
        return AuditSeal.objects.filter(event=event).values_list("previous_hash", flat=True).first() or "—"

    @admin.display(description="hash")
    def seal_hash(self, event):
        return AuditSeal.objects.filter(event=event).values_list("hash", flat=True).first() or "—"

    @admin.display(description="context")
    def context_display(self, event):
        return format_html('<pre style="{}">{}</pre>', PRE_STYLE, _pretty(event.context))

    @admin.display(description="changed")
    def changed_keys(self, event):
        """Top-level keys whose value differs, with before → after, for a quick read of an update."""
        before, after = (event.diff or {}).get("before"), (event.diff or {}).get("after")
        if not isinstance(before, dict) or not isinstance(after, dict):
            return "created" if before is None and after is not None else ("deleted" if after is None and before is not None else "—")
        keys = [key for key in sorted(set(before) | set(after), key=str) if before.get(key) != after.get(key)]
        if not keys:
            return "no change"
        rows = format_html_join(
            "", '<tr><th style="padding-right:1em">{}</th><td><pre style="{}">{}</pre></td><td><pre style="{}">{}</pre></td></tr>',
            ((key, PRE_STYLE, _pretty(before.get(key)), PRE_STYLE, _pretty(after.get(key))) for key in keys),
        )
        return format_html("<table><thead><tr><th>key</th><th>before</th><th>after</th></tr></thead><tbody>{}</tbody></table>", rows)

    @admin.display(description="diff")
    def diff_display(self, event):
        return format_html('<pre style="{}">{}</pre>', PRE_STYLE, _pretty(event.diff))
