"""Who may run and who may approve an action — the one module that answers it.

Grants are guardian object permissions on the Action (`execute_action`, `approve_action`) to users,
to teams (their groups) or to the Member role (the `Members` group: every signed-in user);
`ownedByTeam` (on the action's `permission_settings`) extends a grant to members of the teams that
own the run's entity. Admins may do everything. Without a grant an action is invisible.
"""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from guardian.models import GroupObjectPermission, UserObjectPermission

from actions.models import Action
from catalog import choices as catalog_choices
from catalog.access import is_admin, user_team_ids

EXECUTE, APPROVE = "execute_action", "approve_action"


def _content_type():
    return ContentType.objects.get_for_model(Action)


def _granted_action_ids(user, codename):
    ct = _content_type()
    groups = Group.objects.filter(Q(user=user) | Q(name=catalog_choices.MEMBERS_GROUP)).values("id")
    user_rows = UserObjectPermission.objects.filter(user=user, content_type=ct, permission__codename=codename)
    group_rows = GroupObjectPermission.objects.filter(group__in=groups, content_type=ct, permission__codename=codename)
    return {int(pk) for pk in user_rows.values_list("object_pk", flat=True).union(group_rows.values_list("object_pk", flat=True))}


def _owned_by_team(action, verb, entity_team_ids, user):
    flags = action.permission_settings.get("ownedByTeam", {})
    return bool(flags.get(verb)) and bool(user_team_ids(user) & set(entity_team_ids))


def actions_visible_to(user, queryset=None):
    """Actions the user may execute (on some entity): listed and runnable. Unpublished actions are
    visible to admins only (to manage them)."""
    queryset = Action.objects.all() if queryset is None else queryset
    if is_admin(user):
        return queryset
    queryset = queryset.filter(publish=True)
    granted = _granted_action_ids(user, EXECUTE)
    owned = Q(permission_settings__ownedByTeam__execute=True) if user_team_ids(user) else Q(pk__in=[])
    return queryset.filter(Q(pk__in=granted) | owned)


def can_execute(user, action, entity_team_ids=()) -> bool:
    if is_admin(user):
        return True
    if action.pk in _granted_action_ids(user, EXECUTE):
        return True
    return _owned_by_team(action, "execute", entity_team_ids, user)


def can_approve(user, action, entity_team_ids=()) -> bool:
    if is_admin(user):
        return True
    if action.pk in _granted_action_ids(user, APPROVE):
        return True
    return _owned_by_team(action, "approve", entity_team_ids, user)


def eligible_approvers(action, entity_team_ids=(), *, exclude=None):
    """Users granted `approve` on `action` (directly, by team, Member role or ownedByTeam), as a queryset.
    Admins may always decide but are not counted here, so ALL means every granted approver; when nobody
    is granted, the admins are the approvers."""
    ct = _content_type()
    key = str(action.pk)
    granted_groups = GroupObjectPermission.objects.filter(content_type=ct, object_pk=key, permission__codename=APPROVE)
    if granted_groups.filter(group__name=catalog_choices.MEMBERS_GROUP).exists():
        condition = Q(is_active=True)
    else:
        condition = (
            Q(pk__in=UserObjectPermission.objects.filter(content_type=ct, object_pk=key, permission__codename=APPROVE)
                .values("user_id"))
            | Q(groups__in=granted_groups.values("group_id"))
        )
        if action.permission_settings.get("ownedByTeam", {}).get("approve") and entity_team_ids:
            condition |= Q(groups__team__in=list(entity_team_ids))
    users = get_user_model().objects.filter(condition, is_active=True).distinct()
    if not users.exists():
        users = get_user_model().objects.filter(Q(is_superuser=True) | Q(groups__name=catalog_choices.ADMINS_TEAM),
                                                is_active=True).distinct()
    if exclude is not None:
        users = users.exclude(pk=exclude.pk)
    return users


def approvable_action_ids(user):
    """Ids of actions whose runs the user may decide (None: all, for admins); ownedByTeam handled by the caller."""
    if is_admin(user):
        return None
    return _granted_action_ids(user, APPROVE)
