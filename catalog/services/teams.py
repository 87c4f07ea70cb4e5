"""Teams: create, update (name, description, members), delete. A team is an auth Group."""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from audit import choices as audit_choices
from audit.services import audit_record
from catalog.models import Team
from portal.errors import Conflict, ValidationFailed


def team_json(team, members=None):
    if members is None:
        members = sorted(team.group.user_set.values_list("email", flat=True))
    return {"name": team.name, "description": team.description, "users": list(members)}


def _clean(data, *, partial):
    if not isinstance(data, dict):
        raise ValidationFailed("must be a JSON object", path="body")
    unknown = set(data) - {"name", "description", "users"}
    if unknown:
        raise ValidationFailed("is not a team field", path=sorted(unknown)[0])
    if not partial or "name" in data:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise ValidationFailed("is required, a string of at most 100 characters", path="name")
        if name != name.strip() or not name.isprintable():  # "platform\n" would pass for "platform"
            raise ValidationFailed(f"{name!r} starts or ends with spaces or holds control characters", path="name")
    if "description" in data and not isinstance(data["description"], (str, type(None))):
        raise ValidationFailed("must be a string", path="description")
    if "users" in data and not (isinstance(data["users"], list) and all(isinstance(u, str) for u in data["users"])):
        raise ValidationFailed("must be a list of user emails", path="users")
    return data


def _members(emails):
    users = list(get_user_model().objects.filter(email__in=emails))
    missing = sorted(set(emails) - {u.email for u in users})
    if missing:
        raise ValidationFailed(f"user {missing[0]!r} does not exist", path="users")
    return users


@transaction.atomic
def team_create(*, actor, data):
    data = _clean(data, partial=False)
    if Team.objects.filter(name=data["name"]).exists() or Group.objects.filter(name=data["name"]).exists():
        raise Conflict(f"Team {data['name']!r} already exists.")
    group = Group.objects.create(name=data["name"])
    team = Team.objects.create(group=group, name=data["name"], description=data.get("description") or "")
    users = _members(data.get("users", []))
    group.user_set.set(users)
    audit_record(actor=actor, verb=audit_choices.TEAM_CREATED, action=audit_choices.AuditAction.CREATE,
                 resource_type="team", identifier=team.name, after=team_json(team, sorted(u.email for u in users)))
    return team


@transaction.atomic
def team_update(*, actor, team, data, partial=True):
    """PATCH (partial) changes the given fields; PUT replaces description and members too."""
    data = _clean(data, partial=partial)
    team = Team.objects.select_for_update().select_related("group").get(pk=team.pk)
    before = team_json(team)
    if "name" in data and data["name"] != team.name:
        if Team.objects.filter(name=data["name"]).exists() or Group.objects.filter(name=data["name"]).exists():
            raise Conflict(f"Team {data['name']!r} already exists.")
        team.name = team.group.name = data["name"]
        team.group.save(update_fields=["name"])
    if "description" in data or not partial:
        team.description = data.get("description") or ""
    team.save()
    if "users" in data or not partial:
        team.group.user_set.set(_members(data.get("users", [])))
    after = team_json(team)
    audit_record(actor=actor, verb=audit_choices.TEAM_UPDATED, action=audit_choices.AuditAction.UPDATE,
                 resource_type="team", identifier=team.name, before=before, after=after)
    return team


@transaction.atomic
def team_delete(*, actor, team):
    team = Team.objects.select_for_update().select_related("group").get(pk=team.pk)
    before = team_json(team)
    group = team.group
    team.delete()
    group.delete()
    audit_record(actor=actor, verb=audit_choices.TEAM_DELETED, action=audit_choices.AuditAction.DELETE,
                 resource_type="team", identifier=before["name"], before=before)
