"""Users: their roles and team memberships, and making sure a user exists.

A user is `auth.User`, addressed by email (its username is the email). Roles:
- `Admin`: a superuser, or a member of the `Admins` team (see `catalog.access.is_admin`);
- `Member`: every user, implicit;
- `<blueprint>-moderator`: guardian's `moderate_blueprint` granted to the user on that blueprint.
Teams are the user's groups that have a Team (the Members group and other bare groups are not teams).
"""
from collections import defaultdict

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import CharField, OuterRef, Subquery
from django.db.models.functions import Cast
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm, remove_perm

from audit import choices as audit_choices
from audit.services import audit_record
from catalog import choices
from catalog.models import Blueprint, Team
from catalog.services.teams import team_create
from portal.errors import NotFound, ValidationFailed
from portal.datetimes import instant_text

MODERATOR_SUFFIX = "-moderator"
USER_FIELDS = ("roles", "teams")


def user_get(email, *, for_update=False):
    queryset = get_user_model().objects.filter(email__iexact=email).order_by("pk")
    if for_update:
        queryset = queryset.select_for_update()
    user = queryset.first() if email else None
    if user is None:
        raise NotFound(f"User {email!r} was not found.")
    return user


def users_listed():
    """Users the API lists: those with an email (Port identifies users by email)."""
    return get_user_model().objects.exclude(email="").order_by("email", "pk")


def _access_by_user(users):
    """{user pk: {"roles": [names], "teams": [names]}} in a constant number of queries."""
    users = list(users)
    ids = [u.pk for u in users]
    memberships = defaultdict(list)
    admins_by_team = set()
    rows = (get_user_model().groups.through.objects.filter(user_id__in=ids)
            .values_list("user_id", "group__name", "group__team__name").order_by("group__name"))
    for user_id, group_name, team_name in rows:
        if group_name == choices.ADMINS_TEAM:
            admins_by_team.add(user_id)
        if team_name is not None:
            memberships[user_id].append(team_name)
    moderated = defaultdict(list)
    identifier = (Blueprint.objects.annotate(pk_text=Cast("pk", CharField()))
                  .filter(pk_text=OuterRef("object_pk")).values("identifier")[:1])
    grants = UserObjectPermission.objects.filter(
        user_id__in=ids, content_type=ContentType.objects.get_for_model(Blueprint),
        permission__codename=choices.MODERATE_CODENAME,
    ).annotate(blueprint_identifier=Subquery(identifier)).values_list("user_id", "blueprint_identifier")
    for user_id, blueprint_identifier in grants:
        if blueprint_identifier is not None:
            moderated[user_id].append(blueprint_identifier + MODERATOR_SUFFIX)
    result = {}
    for user in users:
        admin = user.is_superuser or user.pk in admins_by_team
        roles = ([choices.ROLE_ADMIN] if admin else []) + [choices.ROLE_MEMBER] + sorted(moderated[user.pk])
        result[user.pk] = {"roles": roles, "teams": sorted(memberships[user.pk])}
    return result


def users_json(users):
    users = list(users)
    access = _access_by_user(users)
    return [
        {
            "email": user.email,
            "firstName": user.first_name,
            "lastName": user.last_name,
            "status": "ACTIVE" if user.is_active else "DISABLED",
            "roles": [{"name": role} for role in access[user.pk]["roles"]],
            "teams": [{"name": name} for name in access[user.pk]["teams"]],
            "createdAt": instant_text(user.date_joined),
        }
        for user in users
    ]


def user_json(user):
    return users_json([user])[0]


def user_access_json(user):
    """{roles, teams} as names: what the audit diff of a user change records."""
    return _access_by_user([user])[user.pk]


def _names(raw, field):
    """A list of names; `{"name": ...}` objects are accepted too, so a GET's roles/teams can be sent back."""
    if not isinstance(raw, list):
        raise ValidationFailed(f"must be a list of {field[:-1]} names", path=field)
    names = []
    for i, item in enumerate(raw):
        if isinstance(item, dict) and set(item) == {"name"}:
            item = item["name"]
        if not isinstance(item, str) or not item:
            raise ValidationFailed(f"must be a {field[:-1]} name", path=f"{field}[{i}]")
        names.append(item)
    return names


def _clean_roles(raw):
    """(admin wanted, {blueprint pk: Blueprint} to moderate)."""
    names = _names(raw, "roles")
    wanted = {}
    for i, role in enumerate(names):
        if role in (choices.ROLE_ADMIN, choices.ROLE_MEMBER):
            continue
        if not role.endswith(MODERATOR_SUFFIX) or role == MODERATOR_SUFFIX:
            raise ValidationFailed(f"unknown role {role!r} (Admin, Member or <blueprint>-moderator)", path=f"roles[{i}]")
        wanted[i] = role[: -len(MODERATOR_SUFFIX)]
    found = {bp.identifier: bp for bp in Blueprint.objects.filter(identifier__in=set(wanted.values()))}
    for i, identifier in wanted.items():
        if identifier not in found:
            raise ValidationFailed(f"blueprint {identifier!r} does not exist", path=f"roles[{i}]")
    return choices.ROLE_ADMIN in names, {bp.pk: bp for bp in found.values()}


def _clean_teams(raw):
    names = _names(raw, "teams")
    teams = {t.name: t for t in Team.objects.select_related("group").filter(name__in=names)}
    for i, name in enumerate(names):
        if name not in teams:
            raise ValidationFailed(f"team {name!r} does not exist", path=f"teams[{i}]")
    return [teams[name] for name in dict.fromkeys(names)]


def _admins_group(actor):
    """The Admins team's group, creating the team (audited by team_create) the first time it is needed."""
    group = Group.objects.filter(name=choices.ADMINS_TEAM).first()
    if group is None:
        group = team_create(actor=actor, data={"name": choices.ADMINS_TEAM,
                                               "description": "Members of this team are portal admins."}).group
    return group


def _set_teams(user, teams):
    current = set(user.groups.filter(team__isnull=False).values_list("pk", flat=True))
    wanted = {team.group.pk for team in teams}
    user.groups.remove(*(current - wanted))
    user.groups.add(*(wanted - current))


def _set_admin(actor, user, admin):
    in_admins_team = user.groups.filter(name=choices.ADMINS_TEAM).exists()
    if admin and not in_admins_team and not user.is_superuser:
        user.groups.add(_admins_group(actor))
    elif not admin:
        if user.is_superuser:
            raise ValidationFailed(f"{user.email} is a superuser; the Admin role cannot be removed through the API",
                                   path="roles")
        if in_admins_team:
            user.groups.remove(Group.objects.get(name=choices.ADMINS_TEAM))


def _set_moderated(user, blueprints):
    current = {int(pk) for pk in UserObjectPermission.objects.filter(
        user=user, content_type=ContentType.objects.get_for_model(Blueprint),
        permission__codename=choices.MODERATE_CODENAME,
    ).values_list("object_pk", flat=True)}
    removed = list(Blueprint.objects.filter(pk__in=current - set(blueprints)))
    added = [bp for pk, bp in blueprints.items() if pk not in current]
    if removed:
        remove_perm(choices.MODERATE_CODENAME, user, removed)
    if added:
        assign_perm(choices.MODERATE_CODENAME, user, added)


@transaction.atomic
def user_update(*, actor, user, data):
    """PATCH a user's `roles` and/or `teams`; each given list replaces the current set.

    `Member` is implicit. `Admin` is membership of the Admins team, so when `roles` is given it decides that
    membership, whatever `teams` says — naming `Admins` in `teams` while `roles` omits `Admin` is refused.
    """
    if not isinstance(data, dict):
        raise ValidationFailed("must be a JSON object", path="body")
    unknown = sorted(set(data) - set(USER_FIELDS))
    if unknown:
        raise ValidationFailed("is not a user field that can be changed (roles, teams)", path=unknown[0])
    user = get_user_model().objects.select_for_update().get(pk=user.pk)
    roles = _clean_roles(data["roles"]) if "roles" in data else None
    teams = _clean_teams(data["teams"]) if "teams" in data else None
    if roles is not None and teams is not None and not roles[0]:
        for i, team in enumerate(teams):
            if team.name == choices.ADMINS_TEAM:
                raise ValidationFailed(f"membership of {choices.ADMINS_TEAM!r} is the Admin role, which roles omits",
                                       path=f"teams[{i}]")
    before = user_access_json(user)
    if teams is not None:
        _set_teams(user, teams)
    if roles is not None:
        admin, moderated = roles
        _set_admin(actor, user, admin)
        _set_moderated(user, moderated)
    after = user_access_json(user)
    if after != before:
        audit_record(actor=actor, verb=audit_choices.USER_UPDATED, action=audit_choices.AuditAction.UPDATE,
                     resource_type="user", identifier=user.email, before=before, after=after)
    return user


@transaction.atomic
def user_ensure(*, actor, email, admin=False, team_names=(), password=None, superuser=False):
    """The user with this email, created if missing (username = email, no usable password unless
    `password` is given). `admin` adds them to the Admins team and `team_names` to those teams (created if
    missing); `superuser` also opens the Django admin to them; nothing is removed."""
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationFailed(f"{email!r} is not a valid email address", path="email")
    User = get_user_model()
    user = User.objects.select_for_update().filter(email__iexact=email).order_by("pk").first()
    created = False
    if user is None:
        user, created = User.objects.get_or_create(username=email, defaults={"email": email})
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
    before = None if created else user_access_json(user)
    if password is not None and not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
    if superuser and not user.is_superuser:
        user.is_superuser = user.is_staff = True
        user.save(update_fields=["is_superuser", "is_staff"])
    groups = []
    for i, name in enumerate(team_names):
        if not isinstance(name, str) or not name.strip():
            raise ValidationFailed("must be a team name", path=f"team_names[{i}]")
        team = Team.objects.select_related("group").filter(name=name).first() or team_create(actor=actor, data={"name": name})
        groups.append(team.group)
    if admin and not user.is_superuser:
        groups.append(_admins_group(actor))
    user.groups.add(*groups)
    after = user_access_json(user)
    if created:
        audit_record(actor=actor, verb=audit_choices.USER_CREATED, action=audit_choices.AuditAction.CREATE,
                     resource_type="user", identifier=user.email, after={"email": user.email, **after})
    elif after != before:
        audit_record(actor=actor, verb=audit_choices.USER_UPDATED, action=audit_choices.AuditAction.UPDATE,
                     resource_type="user", identifier=user.email, before=before, after=after)
    return user
