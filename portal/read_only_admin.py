"""`ReadOnlyAdmin`: the admin of rows the portal writes itself (the audit log, the outbox, the change log, settings
from the environment): listed and viewed, never added, edited or deleted through the admin."""
from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
