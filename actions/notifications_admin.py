"""Slack notification switches in the admin: one row (no second one, no delete). Saves go through
actions.notifications.notification_settings_update (validated, audited with origin ADMIN)."""
from django import forms
from django.contrib import admin

from actions.models import NotificationSettings
from actions.notifications import SETTINGS_FIELDS, notification_settings_update
from catalog.admin import ServiceAdmin, admin_actor
from catalog.forms import ServiceForm


def _values(form):
    return {name: form.cleaned_data[name] for name in SETTINGS_FIELDS if name in form.cleaned_data}


class NotificationSettingsForm(ServiceForm, forms.ModelForm):
    field_by_key = {name: name for name in SETTINGS_FIELDS}

    class Meta:
        model = NotificationSettings
        fields = list(SETTINGS_FIELDS)

    def clean(self):
        cleaned = super().clean()
        self._validate_with(lambda: notification_settings_update(actor=self.actor, values=_values(self)))
        return cleaned


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(ServiceAdmin):
    form = NotificationSettingsForm
    list_display = ("__str__", "slack_enabled", "approval_waiting", "run_ended", "ttl_warning", "approvers_channel",
                    "platform_channel")
    fieldsets = (
        ("Slack", {"fields": ("slack_enabled",),
                   "description": "Slack itself is configured by the operator: SLACK_BOT_TOKEN, SLACK_API_URL, "
                                  "SLACK_DEFAULT_CHANNEL. Actions can turn each message off with "
                                  '"notifications": {"approvalWaiting": false, "runEnded": false, "ttlWarning": false}.'}),
        ("Messages", {"fields": ("approval_waiting", "run_ended", "ttl_warning", "ttl_warning_hours")}),
        ("Channels", {"fields": ("approvers_channel", "platform_channel")}),
    )

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not NotificationSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        saved = notification_settings_update(actor=admin_actor(request), values=_values(form))
        obj.pk = saved.pk
        obj._state.adding = False
