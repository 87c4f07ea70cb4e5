"""Blueprint entity permissions, stored as guardian object permissions on the blueprint.

Verbs read/register/update/unregister map to the model permissions in `choices`; per-key grants
(updateProperties / updateRelations) use permissions created on demand (`update_property:<key>`).
The Member role is the `Members` group; `ownedByTeam` flags live on the blueprint.
"""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from guardian.models import GroupObjectPermission, UserObjectPermission
from guardian.shortcuts import assign_perm

from audit import choices as audit_choices
from audit.services import audit_record
from catalog import choices
from catalog.models import Blueprint, Team
from portal.errors import ValidationFailed

GRANT_KEYS = {"roles", "users", "teams", "ownedByTeam"}


def members_group():
    group, _ = Group.objects.get_or_create(name=choices.MEMBERS_GROUP)
    return group


def _permission(codename, name=None):
    ct = ContentType.objects.get_for_model(Blueprint)
    permission, _ = Permission.objects.get_or_create(content_type=ct, codename=codename, defaults={"name": name or codename})
    return permission


def _grant_rows(obj):
    """(codename, email) user rows and (codename, group name) group rows of guardian grants on `obj`."""
    ct = ContentType.objects.get_for_model(obj)
    key = str(obj.pk)
    users = UserObjectPermission.objects.filter(content_type=ct, object_pk=key).values_list("permission__codename", "user__email")
    groups = GroupObjectPermission.objects.filter(content_type=ct, object_pk=key).values_list("permission__codename", "group__name")
    return list(users), list(groups)


def _grant_json(codename, blueprint, users, groups, owned):
    return {
        "roles": [choices.ROLE_ADMIN, f"{blueprint.identifier}-moderator"]
        + ([choices.ROLE_MEMBER] if (codename, choices.MEMBERS_GROUP) in groups else []),
        "users": sorted(email for c, email in users if c == codename),
        "teams": sorted(name for c, name in groups if c == codename and name != choices.MEMBERS_GROUP),
        "ownedByTeam": bool(owned),
    }


def blueprint_permissions_json(blueprint):
    users, groups = _grant_rows(blueprint)
    owned = blueprint.permission_settings.get("ownedByTeam", {})
    entities = {verb: _grant_json(codename, blueprint, users, groups, owned.get(verb))
                for verb, codename in choices.ENTITY_PERMISSION_CODENAMES.items()}
    for section, prefix in (("updateProperties", "update_property:"), ("updateRelations", "update_relation:")):
        keys = blueprint.schema.get("properties", {}) if section == "updateProperties" else blueprint.relations
        entities[section] = {key: _grant_json(prefix + key, blueprint, users, groups, False) for key in keys}
    return {"entities": entities}


def blueprint_permissions_initialize(blueprint):
    """Defaults for a new blueprint: every member reads; Admins and moderators do the rest."""
    assign_perm(_permission(choices.ENTITY_PERMISSION_CODENAMES["read"]), members_group(), blueprint)


def blueprint_permissions_clear(blueprint):
    ct = ContentType.objects.get_for_model(Blueprint)
    UserObjectPermission.objects.filter(content_type=ct, object_pk=str(blueprint.pk)).delete()
    GroupObjectPermission.objects.filter(content_type=ct, object_pk=str(blueprint.pk)).delete()


def _clean_grant(grant, path):
    if not isinstance(grant, dict):
        raise ValidationFailed("must be an object with roles, users, teams, ownedByTeam", path=path)
    unknown = set(grant) - GRANT_KEYS
    if unknown:
        raise ValidationFailed(f"unknown keys {sorted(unknown)}", path=path)
    for key in ("roles", "users", "teams"):
        if key in grant and not (isinstance(grant[key], list) and all(isinstance(v, str) for v in grant[key])):
            raise ValidationFailed("must be a list of strings", path=f"{path}.{key}")
    if "ownedByTeam" in grant and not isinstance(grant["ownedByTeam"], bool):
        raise ValidationFailed("must be true or false", path=f"{path}.ownedByTeam")
    return grant


def _set_grant(obj, permission, grant, path, users_by_email, teams_by_name):
    """Replace the grants of `permission` on `obj` (a blueprint or an action) with the given lists."""
    ct = ContentType.objects.get_for_model(obj)
    key = str(obj.pk)
    grant = {k: list(dict.fromkeys(v)) if k in ("users", "teams") else v for k, v in grant.items()}  # repeats: once
    if "users" in grant:
        missing = [e for e in grant["users"] if e not in users_by_email]
        if missing:
            raise ValidationFailed(f"user {missing[0]!r} does not exist", path=f"{path}.users")
        UserObjectPermission.objects.filter(content_type=ct, object_pk=key, permission=permission).delete()
        UserObjectPermission.objects.bulk_create([UserObjectPermission(content_type=ct, object_pk=key, permission=permission,
                                                                       user=users_by_email[e]) for e in grant["users"]])
    groups = None
    if "teams" in grant:
        missing = [t for t in grant["teams"] if t not in teams_by_name]
        if missing:
            raise ValidationFailed(f"team {missing[0]!r} does not exist", path=f"{path}.teams")
        groups = [teams_by_name[t].group for t in grant["teams"]]
    if "roles" in grant:
        bad = [r for r in grant["roles"] if r not in (choices.ROLE_ADMIN, choices.ROLE_MEMBER) and not r.endswith("-moderator")]
        if bad:
            raise ValidationFailed(f"unknown role {bad[0]!r} (Admin, Member or <blueprint>-moderator)", path=f"{path}.roles")
    touched = GroupObjectPermission.objects.filter(content_type=ct, object_pk=key, permission=permission)
    if groups is not None:
        touched.exclude(group__name=choices.MEMBERS_GROUP).delete()
        GroupObjectPermission.objects.bulk_create([GroupObjectPermission(content_type=ct, object_pk=key, permission=permission,
                                                                         group=g) for g in groups])
    if "roles" in grant:
        touched.filter(group__name=choices.MEMBERS_GROUP).delete()
        if choices.ROLE_MEMBER in grant["roles"]:
            GroupObjectPermission.objects.create(content_type=ct, object_pk=key, permission=permission, group=members_group())


@transaction.atomic
def blueprint_permissions_update(*, actor, blueprint, data):
    """PATCH semantics: only the verbs and keys given change; each given list replaces the stored one."""
    blueprint = Blueprint.objects.select_for_update().get(pk=blueprint.pk)
    if not isinstance(data, dict) or not isinstance(data.get("entities", {}), dict):
        raise ValidationFailed("must be an object of permission grants", path="entities")
    unknown = sorted(set(data) - {"entities"})
    if unknown:
        raise ValidationFailed("is not a field of blueprint permissions (entities)", path=unknown[0])
    entities = data.get("entities", {})
    unknown = set(entities) - set(choices.ENTITY_PERMISSION_VERBS) - {"updateProperties", "updateRelations"}
    if unknown:
        raise ValidationFailed("unknown permission", path=f"entities.{sorted(unknown)[0]}")
    before = blueprint_permissions_json(blueprint)
    users_by_email = {u.email: u for u in get_user_model().objects.exclude(email="")}
    teams_by_name = {t.name: t for t in Team.objects.select_related("group")}
    settings = dict(blueprint.permission_settings)
    owned = dict(settings.get("ownedByTeam", {}))
    for verb in choices.ENTITY_PERMISSION_VERBS:
        if verb in entities:
            grant = _clean_grant(entities[verb], f"entities.{verb}")
            _set_grant(blueprint, _permission(choices.ENTITY_PERMISSION_CODENAMES[verb]), grant, f"entities.{verb}",
                       users_by_email, teams_by_name)
            if "ownedByTeam" in grant:
                owned[verb] = grant["ownedByTeam"]
    for section, prefix, keys in (("updateProperties", "update_property:", blueprint.schema.get("properties", {})),
                                  ("updateRelations", "update_relation:", blueprint.relations)):
        grants = entities.get(section, {})
        if not isinstance(grants, dict):
            raise ValidationFailed(f"must be an object keyed by {section[6:].lower()} identifier", path=f"entities.{section}")
        for key, grant in grants.items():
            if key not in keys:
                raise ValidationFailed(f"not defined on blueprint {blueprint.identifier!r}", path=f"entities.{section}.{key}")
            grant = _clean_grant(grant, f"entities.{section}.{key}")
            if grant.get("ownedByTeam"):  # only the verbs hold ownedByTeam; refuse rather than drop it
                raise ValidationFailed("is only supported on read, register, update and unregister",
                                       path=f"entities.{section}.{key}.ownedByTeam")
            _set_grant(blueprint, _permission(prefix + key), grant, f"entities.{section}.{key}", users_by_email, teams_by_name)
    settings["ownedByTeam"] = owned
    blueprint.permission_settings = settings
    blueprint.save(update_fields=["permission_settings", "updated_at"])
    after = blueprint_permissions_json(blueprint)
    audit_record(actor=actor, verb=audit_choices.BLUEPRINT_PERMISSIONS_UPDATED, action=audit_choices.AuditAction.UPDATE,
                 resource_type="blueprint", identifier=blueprint.identifier, blueprint=blueprint.identifier,
                 before=before, after=after, message="Entity permissions changed.")
    return after
