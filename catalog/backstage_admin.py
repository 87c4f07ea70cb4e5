"""Backstage locations in the admin: registered and changed through the services (validated and audited, errors
on their fields), refreshed now or given the Backstage blueprints by an action, deleted with the entities
they wrote; each shows its last refresh, entity count and errors. Registered by catalog/admin.py."""
from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from catalog.forms import ServiceForm
from catalog.models import BackstageLocation
from catalog.services.backstage import (backstage_blueprints_install, backstage_location_delete,
                                        backstage_location_refresh, backstage_location_register,
                                        backstage_location_update)
from portal.actor import Actor, AuditOrigin
from portal.errors import PortalError

FIELDS = {"identifier": "identifier", "type": "type", "target": "target", "catalogPath": "catalog_path",
          "refreshIntervalMinutes": "refresh_interval_minutes"}


def _actor(request):
    return Actor(user=request.user, origin=AuditOrigin.ADMIN)


def location_data(cleaned, *, creating):
    return {key: cleaned[name] for key, name in FIELDS.items()
            if name in cleaned and cleaned[name] is not None and (creating or key != "identifier")}


class BackstageLocationAdminForm(ServiceForm, forms.ModelForm):
    field_by_key = FIELDS

    class Meta:
        model = BackstageLocation
        fields = tuple(FIELDS.values())

    def clean(self):
        cleaned = super().clean()
        creating = self.instance.pk is None
        data = location_data(cleaned, creating=creating)
        if creating:
            self._validate_with(lambda: backstage_location_register(actor=self.actor, data=data))
        else:
            self._validate_with(lambda: backstage_location_update(actor=self.actor, location=self.instance, data=data))
        return cleaned


@admin.register(BackstageLocation)
class BackstageLocationAdmin(admin.ModelAdmin):
    form = BackstageLocationAdminForm
    list_display = ("identifier", "type", "target", "last_refresh_at", "entity_count", "error_count")
    search_fields = ("identifier", "target")
    ordering = ("identifier",)
    actions = ["refresh_now", "install_blueprints"]
    readonly_fields = ("last_refresh_at", "last_refresh_seconds", "files_read", "entity_count", "refresh_errors",
                       "created_by", "updated_by", "updated_at")
    fieldsets = ((None, {"fields": tuple(FIELDS.values())}),
                 ("Last refresh", {"fields": ("last_refresh_at", "last_refresh_seconds", "files_read", "entity_count",
                                              "refresh_errors")}),
                 ("History", {"fields": ("created_by", "updated_by", "updated_at"), "classes": ("collapse",)}))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": _actor(request)})

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (("identifier",) if obj is not None else ())

    def view_on_site(self, obj):
        return reverse("backstage-location", args=[obj.identifier])

    @admin.display(description="errors")
    def error_count(self, obj):
        return len(obj.errors)

    @admin.display(description="errors of the last refresh")
    def refresh_errors(self, obj):
        if not obj.errors:
            return "None."
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                                ((e["file"], "-" if e["document"] is None else e["document"], e["field"], e["message"])
                                 for e in obj.errors))
        return format_html("<table><tr><th>file</th><th>document</th><th>field</th><th>message</th></tr>{}</table>", rows)

    def save_model(self, request, obj, form, change):
        data = location_data(form.cleaned_data, creating=not change)
        if change:
            saved = backstage_location_update(actor=_actor(request), location=obj, data=data)
        else:
            saved = backstage_location_register(actor=_actor(request), data=data)
        for field in obj._meta.concrete_fields:  # the admin logs and redirects with the row the service wrote
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False

    def delete_model(self, request, obj):
        backstage_location_delete(actor=_actor(request), location=obj)

    def delete_queryset(self, request, queryset):
        for location in queryset:
            backstage_location_delete(actor=_actor(request), location=location)

    @admin.action(description="Refresh now", permissions=["change"])
    def refresh_now(self, request, queryset):
        for location in queryset:
            try:
                location = backstage_location_refresh(actor=_actor(request), location=location)
            except PortalError as exc:
                self.message_user(request, f"{location.identifier}: {exc.message}", messages.ERROR)
                continue
            level = messages.WARNING if location.errors else messages.SUCCESS
            self.message_user(request, f"{location.identifier}: {location.entity_count} entities, "
                                       f"{len(location.errors)} errors.", level)

    @admin.action(description="Install the Backstage blueprints (those missing)", permissions=["change"])
    def install_blueprints(self, request, queryset):
        installed = backstage_blueprints_install(actor=_actor(request))
        self.message_user(request, f"Installed {', '.join(installed)}." if installed else
                          "The Backstage blueprints are installed already.", messages.SUCCESS)
