"""Admin forms for the catalog.

Definitions are edited as pretty-printed JSON. A form validates by running the very service that will
save it, inside a savepoint that is always rolled back (`dry_run`), so the admin refuses exactly what the
API refuses; each of the service's errors carries its JSON path, and the form puts it on the field holding
that path.
The write itself happens in the admin's `save_model`, through the same service.
"""
import json

from django import forms
from django.conf import settings
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth import get_user_model
from django.db import transaction
from django.forms.fields import InvalidJSONInput
from guardian.forms import GroupObjectPermissionsForm, UserObjectPermissionsForm

from catalog import choices
from catalog.models import Blueprint, Entity, Relation, Team
from catalog.selectors.blueprints import DEFINITION_FIELDS
from portal.errors import Conflict, PortalError, ValidationFailed

MONOSPACE = "font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; width: 100%; max-width: 70em;"
ENTITY_VERBS = {codename: verb for verb, codename in choices.ENTITY_PERMISSION_CODENAMES.items()}


class JSONTextarea(forms.Textarea):
    def __init__(self, rows=14):
        super().__init__(attrs={"rows": rows, "spellcheck": "false", "class": "vLargeTextField", "style": MONOSPACE})


class PrettyJSONField(forms.JSONField):
    """A JSON field shown indented, keys in their stored order. Text Python's json module fails on other than with a
    JSONDecodeError (nesting deeper than the interpreter's stack: RecursionError; a number of more than 4,300
    digits: ValueError) is a field error and is shown back as typed, not a 500."""

    def __init__(self, *, rows=14, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(widget=JSONTextarea(rows=rows), **kwargs)

    def to_python(self, value):
        try:
            return super().to_python(value)
        except RecursionError:
            raise forms.ValidationError(f"Enter valid JSON nested at most {settings.API_MAX_JSON_DEPTH} levels deep.",
                                        code="invalid") from None
        except ValueError as exc:  # Django answers a JSONDecodeError itself; this is what it lets through
            # "Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits; use sys...()"
            raise forms.ValidationError(f"Enter a valid JSON: {str(exc).split(';')[0]}.", code="invalid") from None

    def bound_data(self, data, initial):
        try:
            return super().bound_data(data, initial)
        except (RecursionError, ValueError):
            return InvalidJSONInput(data)

    def prepare_value(self, value):
        if isinstance(value, InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


def dry_run(write):
    """Run a service in a savepoint that is rolled back whatever happens: every check, nothing kept
    (its audit row and on-commit side effects go with the savepoint)."""
    with transaction.atomic():
        result = write()
        transaction.set_rollback(True)
    return result


def service_error_attach(form, exc, field_by_key, *, default=None):
    """Put each of a service error's errors ("path: message") on the form field holding its path's first key;
    an error without a path goes to `default` (else the form as a whole), one whose key no field holds to the
    form as a whole."""
    for error in exc.errors:
        field = field_by_key.get(error.parts[0]) if error.parts else default
        form.add_error(field if field in form.fields else None, str(error))


class ServiceForm:
    """The admin sets `actor` (the signed-in user, origin ADMIN) on the form class it builds per request."""

    actor = None
    field_by_key: dict = {}

    def _validate_with(self, write, *, conflict_field=None):
        if self._errors:  # a field did not even parse: the service has nothing to check yet
            return
        try:
            dry_run(write)
        except Conflict as exc:
            service_error_attach(self, exc, self.field_by_key, default=conflict_field)
        except PortalError as exc:
            service_error_attach(self, exc, self.field_by_key)


# --- blueprints -------------------------------------------------------------------------------------------

class BlueprintAdminForm(ServiceForm, forms.ModelForm):
    schema = PrettyJSONField(rows=20, help_text='Port\'s JSON: {"properties": {...}, "required": [...]}.')
    relations = PrettyJSONField(help_text='{"<relation>": {"target": "<blueprint>", "required": false, "many": false}}')
    mirror_properties = PrettyJSONField(rows=6, label="Mirror properties", help_text='{"<key>": {"path": "<relation>.<property>"}}')
    calculation_properties = PrettyJSONField(rows=6, label="Calculation properties",
                                             help_text='{"<key>": {"calculation": "<jq>", "type": "string"}}')
    aggregation_properties = PrettyJSONField(
        rows=6, label="Aggregation properties",
        help_text='{"<key>": {"target": "<related blueprint>", "calculationSpec": {"calculationBy": "entities", "func": "count"}}}')
    formula_properties = PrettyJSONField(rows=4, label="Formula properties")
    ownership = PrettyJSONField(rows=4, help_text='{"type": "Direct"} or {"type": "Inherited", "path": "<relation>"}; empty for none.')
    changelog_destination = PrettyJSONField(rows=4, label="Changelog destination")
    scorecards = PrettyJSONField(
        rows=10, help_text='Port\'s scorecards: [{"identifier", "title", "filter", "levels": [{"title", "color"}], '
                           '"rules": [{"identifier", "title", "level", "query": {"combinator", "conditions": [...]}}]}]; '
                           'empty for none. Levels default to Basic, Bronze, Silver, Gold.')

    field_by_key = {key: name for key, name in DEFINITION_FIELDS.items()} | {"identifier": "identifier",
                                                                           "scorecards": "scorecards"}

    class Meta:
        model = Blueprint
        fields = ["identifier", "title", "icon", "description", *[f for f in DEFINITION_FIELDS.values()
                                                                   if f not in ("title", "icon", "description")],
                  "scorecards"]

    def definition(self):
        """The Port blueprint JSON this form describes (what the services take)."""
        data = self.cleaned_data
        definition = {"identifier": self.instance.identifier if self.instance.pk else data.get("identifier")}
        for key, name in DEFINITION_FIELDS.items():
            value = data.get(name)
            if name == "schema" and value is None:
                continue  # let the service say `schema: is required`
            if value is None and name not in ("ownership", "changelog_destination"):
                value = "" if name in ("title", "icon", "description") else {}
            definition[key] = value
        return definition

    def scorecard_list(self):
        """The scorecards field's list (empty for none)."""
        return self.cleaned_data.get("scorecards") or []

    def save_through_services(self):
        """Write the blueprint, then its scorecards (checked against the blueprint as written), through the services;
        a scorecard's error is reported at `scorecards...`."""
        from catalog.services.blueprints import blueprint_create, blueprint_update
        from catalog.services.scorecards import scorecards_replace

        if self.instance.pk:
            saved = blueprint_update(actor=self.actor, blueprint=self.instance, data=self.definition())
        else:
            saved = blueprint_create(actor=self.actor, data=self.definition())
        if self.scorecard_list() != saved.scorecards:
            try:
                scorecards_replace(actor=self.actor, blueprint=saved, data=self.scorecard_list())
            except ValidationFailed as exc:
                raise exc.within("scorecards") from None
            saved.refresh_from_db()
        return saved

    def clean(self):
        cleaned = super().clean()
        self._validate_with(self.save_through_services, conflict_field=None if self.instance.pk else "identifier")
        return cleaned


# --- entities ---------------------------------------------------------------------------------------------

class EntityAdminForm(ServiceForm, forms.ModelForm):
    properties = PrettyJSONField(rows=16, help_text="The entity's property values, as an object keyed by property.")
    relations = PrettyJSONField(rows=6, help_text='{"<relation>": "<target identifier>"} or a list for a "many" relation.')
    team = PrettyJSONField(rows=3, help_text='The owning teams: a list of team names, e.g. ["platform"].')

    field_by_key = {"identifier": "identifier", "title": "title", "icon": "icon", "properties": "properties",
                    "relations": "relations", "team": "team", "blueprint": "blueprint"}

    class Meta:
        model = Entity
        fields = ["blueprint", "identifier", "title", "icon", "properties"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "blueprint" in self.fields:
            self.fields["blueprint"].queryset = Blueprint.objects.order_by("identifier").only("id", "identifier")
        entity = self.instance
        if entity.pk:
            many = {key: bool(rel.get("many")) for key, rel in entity.blueprint.relations.items()}
            relations = {}
            for key, target in (Relation.objects.filter(source=entity).order_by("relation", "position", "id")
                                .values_list("relation", "target__identifier")):
                relations.setdefault(key, []).append(target)
            self.initial["relations"] = {key: targets if many.get(key) else targets[0] for key, targets in relations.items()}
            self.initial["team"] = sorted(entity.teams.values_list("name", flat=True))
        else:
            self.initial.setdefault("properties", {})
            self.initial.setdefault("relations", {})
            self.initial.setdefault("team", [])

    def target_blueprint(self):
        return self.instance.blueprint if self.instance.pk else self.cleaned_data.get("blueprint")

    def entity_data(self):
        """The entity JSON this form describes; a change replaces the whole entity (PUT semantics)."""
        data = self.cleaned_data
        entity = {
            "title": data.get("title") or "",
            "icon": data.get("icon") or "",
            "properties": {} if data.get("properties") is None else data["properties"],
            "relations": {} if data.get("relations") is None else data["relations"],
            "team": [] if data.get("team") is None else data["team"],
        }
        if not self.instance.pk:
            entity["identifier"] = data.get("identifier")
        return entity

    def write_arguments(self):
        from catalog.services.entities import CREATE, REPLACE

        if self.instance.pk:
            return {"mode": REPLACE, "identifier": self.instance.identifier}
        return {"mode": CREATE}

    def clean(self):
        cleaned = super().clean()
        from catalog.services.entities import entity_write_one

        blueprint = self.target_blueprint()
        if blueprint is not None and not self._errors:
            try:  # the service's own dry run: validates, checks permission and relation targets, writes nothing
                entity_write_one(actor=self.actor, blueprint=blueprint, data=self.entity_data(), validation_only=True,
                                 **self.write_arguments())
            except Conflict as exc:
                service_error_attach(self, exc, self.field_by_key, default="identifier")
            except PortalError as exc:
                service_error_attach(self, exc, self.field_by_key)
        return cleaned


# --- teams ------------------------------------------------------------------------------------------------

class TeamAdminForm(ServiceForm, forms.ModelForm):
    members = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.exclude(email="").order_by("email"), required=False,
        widget=FilteredSelectMultiple("members", is_stacked=False),
        help_text="Users are members by email; users without an email address cannot be members.",
    )

    field_by_key = {"name": "name", "description": "description", "users": "members"}

    class Meta:
        model = Team
        fields = ["name", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["members"] = list(self.instance.group.user_set.exclude(email="").values_list("pk", flat=True))

    def team_data(self):
        data = self.cleaned_data
        return {"name": data.get("name"), "description": data.get("description") or "",
                "users": sorted({user.email for user in data.get("members") or ()})}

    def clean(self):
        cleaned = super().clean()
        from catalog.services.teams import team_create, team_update

        if self.instance.pk:
            self._validate_with(lambda: team_update(actor=self.actor, team=self.instance, data=self.team_data(), partial=False),
                                conflict_field="name")
        else:
            self._validate_with(lambda: team_create(actor=self.actor, data=self.team_data()), conflict_field="name")
        return cleaned


# --- blueprint object permissions (guardian's admin pages) ------------------------------------------------

class _BlueprintPermissionsForm:
    """Guardian's per-user / per-group permission form, saving through the audited permission services
    instead of assigning guardian rows directly."""

    actor = None
    managed = tuple(ENTITY_VERBS)

    def get_obj_perms_field_choices(self):
        return [(codename, name) for codename, name in super().get_obj_perms_field_choices() if codename in self.managed]

    def get_obj_perms_field_widget(self):
        return FilteredSelectMultiple("permissions", is_stacked=False)

    def changes(self):
        wanted = set(self.cleaned_data[self.get_obj_perms_field_name()])
        current = set(self.get_obj_perms_field_initial()) & set(self.managed)
        return wanted - current, current - wanted

    def _entity_grants(self, added, removed, key, member):
        """{verb: {key: [names]}} for the entity verbs that change, with `member` added or removed."""
        from catalog.services.permissions import blueprint_permissions_json

        current = blueprint_permissions_json(self.obj)["entities"]
        grants = {}
        for codename in (added | removed) & set(ENTITY_VERBS):
            verb = ENTITY_VERBS[codename]
            names = set(current[verb][key])
            if codename in added:
                names.add(member)
            else:
                names.discard(member)
            grants[verb] = {key: sorted(names)}
        return grants


class BlueprintUserPermissionsForm(_BlueprintPermissionsForm, UserObjectPermissionsForm):
    managed = (choices.MODERATE_CODENAME, *ENTITY_VERBS)

    def clean(self):
        cleaned = super().clean()
        if not self.user.email:
            raise forms.ValidationError(f"{self.user.get_username()} has no email address; permissions are granted to users by email.")
        return cleaned

    @transaction.atomic
    def save_obj_perms(self):
        from catalog.services.permissions import blueprint_permissions_update
        from catalog.services.users import MODERATOR_SUFFIX, user_access_json, user_update

        added, removed = self.changes()
        if choices.MODERATE_CODENAME in added | removed:
            role = self.obj.identifier + MODERATOR_SUFFIX
            roles = [r for r in user_access_json(self.user)["roles"] if r != role]
            user_update(actor=self.actor, user=self.user,
                        data={"roles": roles + ([role] if choices.MODERATE_CODENAME in added else [])})
        grants = self._entity_grants(added, removed, "users", self.user.email)
        if grants:
            blueprint_permissions_update(actor=self.actor, blueprint=self.obj, data={"entities": grants})


class BlueprintGroupPermissionsForm(_BlueprintPermissionsForm, GroupObjectPermissionsForm):
    """Groups are teams, or the Members group that stands for Port's Member role. Moderation is granted
    to users (their `<blueprint>-moderator` role), so a group is offered the entity verbs only."""

    def clean(self):
        cleaned = super().clean()
        if self.group.name != choices.MEMBERS_GROUP and not Team.objects.filter(group=self.group).exists():
            raise forms.ValidationError(f"{self.group.name!r} is not a team; grant permissions to a team or to "
                                        f"{choices.MEMBERS_GROUP!r} (every signed-in user).")
        return cleaned

    @transaction.atomic
    def save_obj_perms(self):
        from catalog.services.permissions import blueprint_permissions_update

        added, removed = self.changes()
        if self.group.name == choices.MEMBERS_GROUP:
            grants = self._entity_grants(added, removed, "roles", choices.ROLE_MEMBER)
        else:
            grants = self._entity_grants(added, removed, "teams", self.group.name)
        if grants:
            blueprint_permissions_update(actor=self.actor, blueprint=self.obj, data={"entities": grants})


class IntegrationAdminForm(ServiceForm, forms.ModelForm):
    """An integration's mapping config as JSON, checked by `integration_update` (jq that compiles, blueprints
    that exist), its error on the field."""

    config = PrettyJSONField(rows=24, help_text="Port's mapping: resources [kind, selector.query, port.entity.mappings], "
                                                "deleteDependentEntities, createMissingRelatedEntities, enableMergeEntity, "
                                                "entityDeletionThreshold.")
    field_by_key = {"config": "config"}

    class Meta:
        from catalog.models import Integration

        model = Integration
        fields = ("config",)

    def clean(self):
        from catalog.services.integrations import integration_update

        cleaned = super().clean()
        if self.instance.pk is not None:
            self._validate_with(lambda: integration_update(actor=self.actor, integration=self.instance,
                                                           data={"config": cleaned.get("config")}))
        return cleaned
