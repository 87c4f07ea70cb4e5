"""The platform team's configuration UI for actions. Saves and deletes go through actions/services/actions.py
(validated, audited with origin ADMIN); the form validates by dry-running the same service and puts each
error on the field holding its JSON path, as catalog/admin.py does for blueprints. Execute/approve grants
are edited on the same form, in Port's permissions JSON, through `action_permissions_update` (audited) —
the same service as `PATCH /v1/actions/{id}/permissions` — rather than guardian's admin pages.

Literal credentials in the invocation method are write-only here too (actions/credentials.py): the admin
works on a copy of the action whose credentials are "[redacted]", and a save that keeps the mask keeps
the stored value (the services read the row afresh)."""
import json

from django import forms
from django.contrib import admin

import actions.secrets_admin  # noqa: F401 — the Secret admin (next to the secret services) registers itself
import actions.notifications_admin  # noqa: F401
from actions.credentials import invocation_masked
from actions.definitions import duration_iso
from actions.models import Action
from actions.services.actions import (
    action_create, action_delete, action_permissions_json, action_permissions_update, action_update,
)
from catalog.admin import ServiceAdmin, _copy_saved, admin_actor
from catalog.forms import PrettyJSONField, ServiceForm

# JSON keys of the action definition → the form fields holding them.
FIELD_BY_KEY = {
    "identifier": "identifier", "title": "title", "icon": "icon", "description": "description", "trigger": "trigger",
    "invocationMethod": "invocation_method", "requiredApproval": "required_approval",
    "approvalNotification": "approval_notification", "publish": "publish", "quota": "quota",
    "approvalTimeout": "approval_timeout", "runTimeout": "run_timeout", "ttl": "ttl", "notifications": "notifications",
}
JSON_FIELDS = ("trigger", "invocation_method", "required_approval", "approval_notification", "quota", "ttl", "notifications")


class ActionAdminForm(ServiceForm, forms.ModelForm):
    trigger = PrettyJSONField(rows=24, help_text='{"type": "self-service", "operation": "CREATE" | "DAY-2" | "DELETE", '
                                                 '"blueprintIdentifier": "...", "userInputs": {"properties": {...}, '
                                                 '"required": [...], "order": [...]}} or an automation trigger.')
    invocation_method = PrettyJSONField(rows=12, label="Invocation method",
                                        help_text='e.g. {"type": "WEBHOOK", "url": "https://...", "body": {...}}')
    required_approval = PrettyJSONField(rows=2, label="Required approval",
                                        help_text='false, true, {"type": "ANY"} or {"type": "ALL"}')
    approval_notification = PrettyJSONField(rows=4, label="Approval notification",
                                            help_text='{"type": "webhook", "url": "...", "format": "json"} or {"type": "email"}')
    quota = PrettyJSONField(rows=6, help_text='{"perUser": {"limit": 3, "period": "day"}, "perTeam": {...}, '
                                              '"liveEntitiesPerUser": 2}; empty for none.')
    ttl = PrettyJSONField(rows=6, label="TTL", help_text='CREATE only: {"property": "<timer property>", "default": "P5D", '
                                                         '"maximum": "P14D", "extendBy": "P3D"}')
    notifications = PrettyJSONField(rows=4, label="Slack notifications",
                                    help_text='{"approvalWaiting": false, "runEnded": false, "ttlWarning": false} to turn '
                                              'messages off for this action; empty: the portal-wide settings.')
    approval_timeout = forms.CharField(required=False, label="Approval timeout",
                                       help_text="ISO 8601 duration (P1D); empty: waiting runs never expire.")
    run_timeout = forms.CharField(required=False, label="Run timeout", help_text="ISO 8601 duration; empty: PT1H.")
    permissions = PrettyJSONField(rows=12, label="Who may run and approve",
                                  help_text='{"execute": {"roles": ["Member"], "users": [...], "teams": [...], "ownedByTeam": false}, '
                                            '"approve": {"users": [...], "teams": [...]}}; a new action runs for admins only.')

    # Errors of the definition land on their field; errors of the grants ("execute.teams: ...") on `permissions`.
    field_by_key = FIELD_BY_KEY | {"execute": "permissions", "approve": "permissions"}

    class Meta:
        model = Action
        fields = ["identifier", "title", "icon", "description", "publish", *JSON_FIELDS]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["approval_timeout"] = duration_iso(self.instance.approval_timeout_seconds) or ""
            self.initial["run_timeout"] = duration_iso(self.instance.run_timeout_seconds) or ""
            self.initial["permissions"] = action_permissions_json(self.instance)

    def permissions_changed(self):
        grants = self.cleaned_data.get("permissions")
        return bool(grants) and (not self.instance.pk or grants != action_permissions_json(self.instance))

    def save_through_services(self, actor):
        """Definition, then grants: both through their services. Returns the saved action."""
        if self.instance.pk:
            action = action_update(actor=actor, action=self.instance, data=self.definition())
        else:
            action = action_create(actor=actor, data=self.definition())
        if self.permissions_changed():
            action_permissions_update(actor=actor, action=action, data=self.cleaned_data["permissions"])
        return action

    def definition(self):
        """The action JSON this form describes (what the services take)."""
        data = self.cleaned_data
        definition = {"identifier": self.instance.identifier if self.instance.pk else data.get("identifier")}
        for key, name in FIELD_BY_KEY.items():
            if key == "identifier":
                continue
            value = data.get(name)
            if value in ("", None) and name not in ("title",):
                continue  # absent: the service applies its default (or says it is required)
            definition[key] = value
        return definition

    def clean(self):
        cleaned = super().clean()
        self._validate_with(lambda: self.save_through_services(self.actor),
                            conflict_field=None if self.instance.pk else "identifier")
        return cleaned


@admin.register(Action)
class ActionAdmin(ServiceAdmin):
    form = ActionAdminForm
    list_display = ("identifier", "title", "trigger_type", "operation", "blueprint_identifier", "publish", "updated_at")
    list_filter = ("trigger_type", "operation", "publish")
    search_fields = ("identifier", "title", "blueprint_identifier")
    ordering = ("identifier",)
    readonly_fields = ("created_at", "created_by", "updated_at", "updated_by")
    fieldsets = (
        (None, {"fields": ("identifier", "title", "icon", "description", "publish")}),
        ("Trigger and inputs", {"fields": ("trigger",)}),
        ("Backend", {"fields": ("invocation_method", "run_timeout")}),
        ("Approval", {"fields": ("required_approval", "approval_timeout", "approval_notification")}),
        ("Permissions", {"fields": ("permissions",)}),
        ("Guardrails", {"fields": ("quota", "ttl")}),
        ("Notifications", {"fields": ("notifications",)}),
        ("History", {"fields": readonly_fields, "classes": ("collapse",)}),
    )

    def get_object(self, request, object_id, from_field=None):
        action = super().get_object(request, object_id, from_field)
        if action is not None:  # the form, the read-only view and the history show this copy
            masked = invocation_masked(action.invocation)
            action.invocation_method, action.invocation_method_text = masked, json.dumps(masked)
            action.approval_notification = invocation_masked(action.approval_notification)
        return action

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (("identifier",) if obj is not None else ())

    def save_model(self, request, obj, form, change):
        _copy_saved(form.save_through_services(admin_actor(request)), obj)

    def delete_model(self, request, obj):
        action_delete(actor=admin_actor(request), action=obj)

    def delete_queryset(self, request, queryset):
        for action in queryset:
            action_delete(actor=admin_actor(request), action=action)
