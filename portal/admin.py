"""The outbox in the admin, read-only. API credentials are listed by catalog/api_client_admin.py (their
deactivation is audited, and portal sits below the audit app)."""
from django.contrib import admin

from portal.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """Runtime rows: read-only, for the platform team to see what is pending, retried or failed."""

    list_display = ("id", "task", "args", "not_before", "attempts", "published_at", "lease_until", "done_at",
                    "failed_at", "last_error")
    list_filter = (("done_at", admin.EmptyFieldListFilter), ("failed_at", admin.EmptyFieldListFilter), "task")
    ordering = ("-id",)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
