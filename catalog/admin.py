"""The platform team's configuration UI for the catalog. Saves and deletes go through the catalog services
(validated, audited with origin ADMIN); the forms validate by dry-running the same services."""
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db import transaction
from django.db.models import Count, Exists, OuterRef
from django.http import HttpResponseRedirect
from django.urls import reverse
from guardian.admin import GuardedModelAdmin

from catalog.forms import (BlueprintAdminForm, BlueprintGroupPermissionsForm, BlueprintUserPermissionsForm, EntityAdminForm,
                           IntegrationAdminForm, TeamAdminForm)
import catalog.api_client_admin  # noqa: F401 — the API credential admin (next to its services) registers itself
import catalog.backstage_admin  # noqa: F401 — Backstage locations' admin registers itself
from catalog.initiative_forms import InitiativeAdminForm
from catalog.integration_admin import IntegrationAdminPanels
from catalog.models import Blueprint, Entity, Initiative, Integration, SavedView, Team
from catalog.services.blueprints import blueprint_delete
from catalog.services.entities import entities_delete, entity_write_one
from catalog.services.initiatives import initiative_delete
from catalog.services.integrations import integration_resync_request, integration_update
from catalog.services.saved_views import saved_view_delete
from catalog.services.teams import team_create, team_delete, team_update
from portal.actor import Actor, AuditOrigin
from portal.errors import PortalError
from portal.retry import retry_on_conflict


def admin_actor(request):
    return Actor(user=request.user, origin=AuditOrigin.ADMIN)


def _copy_saved(saved, obj):
    """Make the admin's unsaved instance the row the service wrote (the admin logs and redirects with it)."""
    for field in obj._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db


class ServiceAdmin(admin.ModelAdmin):
    """Hands the request's actor to the form, and turns a service's refusal of a delete into an error
    message (nothing deleted) instead of a server error. The admin's views run the services inside their own
    transaction, so the views are the boundary that retries a deadlock (portal/retry.py)."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"actor": admin_actor(request)})

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return retry_on_conflict(super().changeform_view)(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return retry_on_conflict(super().delete_view)(request, object_id, extra_context)
        except PortalError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            opts = self.opts
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id]))

    def response_action(self, request, queryset):
        @retry_on_conflict
        @transaction.atomic
        def act():
            return super(ServiceAdmin, self).response_action(request, queryset)

        try:
            return act()
        except PortalError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_deleted_objects(self, objs, request):
        """What the confirmation page lists: the objects themselves. What else goes (or whether the delete is
        refused) is the service's decision, and collecting 100k related rows here would only be slow."""
        objs = list(objs)
        return [str(obj) for obj in objs], {self.opts.verbose_name_plural: len(objs)}, set(), []


@admin.register(Blueprint)
class BlueprintAdmin(ServiceAdmin, GuardedModelAdmin):
    form = BlueprintAdminForm
    list_display = ("identifier", "title", "version", "updated_at", "updated_by")
    search_fields = ("identifier", "title")
    ordering = ("identifier",)
    show_full_result_count = False
    readonly_fields = ("version", "created_at", "created_by", "updated_at", "updated_by")
    fieldsets = (
        (None, {"fields": ("identifier", "title", "icon", "description")}),
        ("Schema", {"fields": ("schema",)}),
        ("Relations and derived properties", {"fields": ("relations", "mirror_properties", "calculation_properties",
                                                         "aggregation_properties", "formula_properties")}),
        ("Ownership", {"fields": ("ownership", "changelog_destination")}),
        ("Scorecards", {"fields": ("scorecards",)}),
        ("History", {"fields": readonly_fields, "classes": ("collapse",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (("identifier",) if obj is not None else ())

    def save_model(self, request, obj, form, change):
        form.actor = admin_actor(request)
        _copy_saved(form.save_through_services(), obj)

    def delete_model(self, request, obj):
        blueprint_delete(actor=admin_actor(request), blueprint=obj)

    def delete_queryset(self, request, queryset):
        for blueprint in queryset:
            blueprint_delete(actor=admin_actor(request), blueprint=blueprint)

    def get_obj_perms_manage_user_form(self, request):
        return type("BlueprintUserPermissionsForm", (BlueprintUserPermissionsForm,), {"actor": admin_actor(request)})

    def get_obj_perms_manage_group_form(self, request):
        return type("BlueprintGroupPermissionsForm", (BlueprintGroupPermissionsForm,), {"actor": admin_actor(request)})


class EntityTeamFilter(admin.SimpleListFilter):
    """Entities owned by a team, as an EXISTS: a join on the many-to-many would need DISTINCT over every row."""

    title = "team"
    parameter_name = "team"

    def lookups(self, request, model_admin):
        return [(str(pk), name) for pk, name in Team.objects.order_by("name").values_list("pk", "name")]

    def queryset(self, request, queryset):
        if not self.value() or not self.value().isdigit():
            return queryset
        owned = Entity.teams.through.objects.filter(entity_id=OuterRef("pk"), team_id=int(self.value()))
        return queryset.filter(Exists(owned))


class EntityChangeList(ChangeList):
    def get_queryset(self, request, exclude_parameters=None):
        # A page shows four columns: leave the properties and the blueprint's definition JSON in the database.
        return super().get_queryset(request, exclude_parameters).only(
            "id", "identifier", "title", "updated_at", "blueprint_id", "blueprint__id", "blueprint__identifier")


@admin.register(Entity)
class EntityAdmin(ServiceAdmin):
    form = EntityAdminForm
    list_display = ("identifier", "blueprint", "title", "updated_at")
    list_select_related = ("blueprint",)
    list_filter = ("blueprint", EntityTeamFilter)
    search_fields = ("identifier", "title")  # upper(...) LIKE: served by the trigram indexes
    show_full_result_count = False
    list_per_page = 100
    readonly_fields = ("created_at", "created_by", "updated_at", "updated_by", "run_id", "is_stub")
    fieldsets = (
        (None, {"fields": ("blueprint", "identifier", "title", "icon")}),
        ("Data", {"fields": ("properties", "relations", "team")}),
        ("History", {"fields": readonly_fields, "classes": ("collapse",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (("blueprint", "identifier") if obj is not None else ())

    def get_changelist(self, request, **kwargs):
        return EntityChangeList

    def get_search_results(self, request, queryset, search_term):
        # identifier/title search never spans a multi-valued relation: no DISTINCT over 100k rows.
        queryset, _ = super().get_search_results(request, queryset, search_term)
        return queryset, False

    def save_model(self, request, obj, form, change):
        write = entity_write_one(actor=admin_actor(request), blueprint=form.target_blueprint(), data=form.entity_data(),
                                 **form.write_arguments())
        _copy_saved(write.entity, obj)

    def save_related(self, request, form, formsets, change):
        """Teams and relations were written by the service; the form has no many-to-many of its own."""
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        entities_delete(actor=admin_actor(request), blueprint=obj.blueprint, identifiers=[obj.identifier])

    def delete_queryset(self, request, queryset):
        by_blueprint = {}
        for entity in queryset.select_related("blueprint"):
            by_blueprint.setdefault(entity.blueprint_id, (entity.blueprint, []))[1].append(entity.identifier)
        for blueprint, identifiers in by_blueprint.values():
            entities_delete(actor=admin_actor(request), blueprint=blueprint, identifiers=identifiers)


@admin.register(Team)
class TeamAdmin(ServiceAdmin):
    form = TeamAdminForm
    list_display = ("name", "description", "member_count", "updated_at")
    search_fields = ("name",)
    show_full_result_count = False
    fields = ("name", "description", "members")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("group__user", distinct=True))

    @admin.display(description="members", ordering="member_count")
    def member_count(self, team):
        return team.member_count

    def save_model(self, request, obj, form, change):
        if change:
            saved = team_update(actor=admin_actor(request), team=obj, data=form.team_data(), partial=False)
        else:
            saved = team_create(actor=admin_actor(request), data=form.team_data())
        _copy_saved(saved, obj)

    def save_related(self, request, form, formsets, change):
        """Members were set by the service."""

    def delete_model(self, request, obj):
        team_delete(actor=admin_actor(request), team=obj)

    def delete_queryset(self, request, queryset):
        for team in queryset:
            team_delete(actor=admin_actor(request), team=team)


@admin.register(Initiative)
class InitiativeAdmin(ServiceAdmin):
    """Goals over scorecards; progress is on the initiative's page (/initiatives/<identifier>/)."""

    form = InitiativeAdminForm
    list_display = ("identifier", "title", "blueprint", "scorecard", "level", "due_date", "updated_by")
    list_select_related = ("blueprint",)
    search_fields = ("identifier", "title")
    readonly_fields = ("created_at", "created_by", "updated_at", "updated_by")
    fieldsets = ((None, {"fields": ("identifier", "title", "description", "due_date")}),
                 ("Goal", {"fields": ("blueprint", "scorecard", "level", "rules", "filter")}),
                 ("History", {"fields": readonly_fields, "classes": ("collapse",)}))

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (("identifier",) if obj is not None else ())

    def view_on_site(self, obj):
        return f"/initiatives/{obj.identifier}/"

    def save_model(self, request, obj, form, change):
        form.actor = admin_actor(request)
        _copy_saved(form.save_through_services(), obj)

    def delete_model(self, request, obj):
        initiative_delete(actor=admin_actor(request), initiative=obj)

    def delete_queryset(self, request, queryset):
        for initiative in queryset.select_related("blueprint"):
            initiative_delete(actor=admin_actor(request), initiative=initiative)


@admin.register(SavedView)
class SavedViewAdmin(ServiceAdmin):
    """People save views on the blueprint tables; here the platform team sees them and removes stale ones."""

    list_display = ("name", "blueprint", "owner", "shared", "updated_at")
    list_filter = ("shared", "blueprint")
    search_fields = ("name", "owner__email")
    list_select_related = ("blueprint", "owner")
    readonly_fields = ("name", "blueprint", "owner", "query", "columns", "shared", "created_at", "updated_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request)  # the list, not an edit form

    def delete_model(self, request, obj):
        saved_view_delete(actor=admin_actor(request), view=obj)

    def delete_queryset(self, request, queryset):
        for view in queryset.select_related("blueprint", "owner"):
            saved_view_delete(actor=admin_actor(request), view=view)


@admin.register(Integration)
class IntegrationAdmin(IntegrationAdminPanels, ServiceAdmin):
    """Ocean integrations register themselves; here the platform team edits the mapping (validated and audited
    by the service), asks for a resync, and reads the resync history, recent log lines and kind examples."""

    form = IntegrationAdminForm
    list_display = ("identifier", "installation_app_type", "version", "resync_status", "last_resync_start",
                    "last_resync_end", "resync_requested_at")
    search_fields = ("identifier", "installation_app_type")
    ordering = ("identifier",)
    show_full_result_count = False
    actions = ["resync_now"]
    readonly_fields = ("identifier", "installation_app_type", "version", "resync_status", "last_resync_start",
                       "last_resync_end", "next_resync", "resync_requested_at", "recent_resyncs", "kind_examples",
                       "recent_logs", "created_by", "updated_by", "updated_at")
    fieldsets = (
        (None, {"fields": ("identifier", "installation_app_type", "version")}),
        ("Mapping", {"fields": ("config", "kind_examples")}),
        ("Resyncs", {"fields": ("resync_status", "last_resync_start", "last_resync_end", "next_resync",
                                "resync_requested_at", "recent_resyncs")}),
        ("Recent log lines", {"fields": ("recent_logs",)}),
        ("History", {"fields": ("created_by", "updated_by", "updated_at"), "classes": ("collapse",)}),
    )

    def has_add_permission(self, request):
        return False  # an integration registers itself on its first run (POST /v1/integration)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        saved = integration_update(actor=admin_actor(request), integration=obj, data={"config": form.cleaned_data["config"]})
        _copy_saved(saved, obj)

    @admin.action(description="Resync now (POLLING integrations pick it up at their next poll)", permissions=["change"])
    def resync_now(self, request, queryset):
        for integration in queryset:
            integration_resync_request(actor=admin_actor(request), integration=integration)
        self.message_user(request, f"Asked {queryset.count()} integration(s) to resync.", messages.SUCCESS)
