"""API credentials in the admin: listed read-only (secrets and tokens never shown); switched off through
`api_client_deactivate`, which is audited. Registered by catalog/admin.py."""
from django.contrib import admin, messages

from catalog.services.api_clients import api_client_deactivate
from portal.actor import Actor, AuditOrigin
from portal.models import ApiClient


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ("client_id", "user", "is_machine", "created_at", "is_active")
    list_filter = ("is_active", "is_machine")
    list_select_related = ("user",)
    search_fields = ("=client_id", "user__email")
    ordering = ("-created_at",)
    show_full_result_count = False
    fields = ("client_id", "user", "is_machine", "is_active", "created_at", "token_expires_at")  # no secret hash, no token
    readonly_fields = fields
    actions = ["deactivate"]

    def has_add_permission(self, request):
        return False  # credentials are created with their secret shown once: `manage.py create_api_client`

    def has_change_permission(self, request, obj=None):
        # The list's actions need the model's change permission; no credential is edited field by field.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: the audit log keeps referring to the client id

    @admin.action(description="Deactivate the selected API credentials", permissions=["change"])
    def deactivate(self, request, queryset):
        actor = Actor(user=request.user, origin=AuditOrigin.ADMIN)
        changed = 0
        for client in queryset.filter(is_active=True):
            api_client_deactivate(actor=actor, client=client)
            changed += 1
        self.message_user(request, f"Deactivated {changed} API credential{'s' if changed != 1 else ''}.", messages.SUCCESS)
