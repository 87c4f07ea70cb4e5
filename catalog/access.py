"""Who may do what in the catalog — the one module that answers it.

Admins (superusers or members of the Admins team) may do everything; a blueprint's moderators
(guardian `moderate_blueprint` on it) may do everything with that blueprint and its entities.
Everyone else gets what the blueprint's entity permissions grant: to them, to one of their teams,
to the Member role (the `Members` group's grants apply to every signed-in user), or, with
`ownedByTeam`, on the entities their teams own.
"""
import json
from dataclasses import dataclass, field
from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Exists, OuterRef, Q
from guardian.models import GroupObjectPermission, UserObjectPermission

from catalog import choices
from catalog.models import Blueprint, Entity, Team

VERB_CODENAMES = choices.ENTITY_PERMISSION_CODENAMES


def is_admin(user) -> bool:
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_portal_is_admin", None)
    if cached is None:
        cached = user._portal_is_admin = user.groups.filter(name=choices.ADMINS_TEAM).exists()
    return cached


def user_team_ids(user) -> set[int]:
    if user is None or not user.is_authenticated:
        return set()
    cached = getattr(user, "_portal_team_ids", None)
    if cached is None:
        cached = user._portal_team_ids = set(Team.objects.filter(group__user=user).values_list("id", flat=True))
    return cached


def _blueprint_content_type():
    return ContentType.objects.get_for_model(Blueprint)


def _grants(user, blueprint_ids=None):
    """{blueprint_id: set(codenames)} granted to the user directly, through teams, or to Member."""
    ct = _blueprint_content_type()
    user_rows = UserObjectPermission.objects.filter(user=user, content_type=ct)
    group_rows = GroupObjectPermission.objects.filter(content_type=ct).filter(
        group__in=Group.objects.filter(user=user).values("id").union(Group.objects.filter(name=choices.MEMBERS_GROUP).values("id"))
    )
    if blueprint_ids is not None:
        keys = [str(pk) for pk in blueprint_ids]
        user_rows, group_rows = user_rows.filter(object_pk__in=keys), group_rows.filter(object_pk__in=keys)
    grants = {}
    for rows in (user_rows, group_rows):
        for object_pk, codename in rows.values_list("object_pk", "permission__codename"):
            grants.setdefault(int(object_pk), set()).add(codename)
    return grants


@dataclass
class BlueprintAccess:
    """What one user may do with one blueprint's entities."""

    blueprint: Blueprint
    full: set = field(default_factory=set)  # verbs granted on every entity
    owned: set = field(default_factory=set)  # verbs granted on entities owned by the user's teams
    codenames: set = field(default_factory=set)
    team_ids: set = field(default_factory=set)

    def allows(self, verb, entity_team_ids=()) -> bool:
        if verb in self.full:
            return True
        return verb in self.owned and bool(self.team_ids & set(entity_team_ids))

    def may_update_keys(self, properties=(), relations=(), entity_team_ids=()) -> list[str]:
        """Keys the user may NOT change with only per-property/per-relation grants."""
        if self.allows("update", entity_team_ids):
            return []
        denied = [f"properties.{p}" for p in properties if f"update_property:{p}" not in self.codenames]
        denied += [f"relations.{r}" for r in relations if f"update_relation:{r}" not in self.codenames]
        return denied


def blueprint_access(user, blueprint) -> BlueprintAccess:
    if is_admin(user):  # their teams decide nothing: not read (every CI report of an admin token asked)
        return BlueprintAccess(blueprint=blueprint, full=set(VERB_CODENAMES))
    access = BlueprintAccess(blueprint=blueprint, team_ids=user_team_ids(user))
    codenames = _grants(user, [blueprint.pk]).get(blueprint.pk, set())
    access.codenames = codenames
    if choices.MODERATE_CODENAME in codenames:
        access.full = set(VERB_CODENAMES)
        return access
    owned_flags = blueprint.permission_settings.get("ownedByTeam", {})
    for verb, codename in VERB_CODENAMES.items():
        if codename in codenames:
            access.full.add(verb)
        if owned_flags.get(verb):
            access.owned.add(verb)
    # register/update/unregister imply read
    if access.full & {"register", "update", "unregister"}:
        access.full.add("read")
    if access.owned & {"register", "update", "unregister"}:
        access.owned.add("read")
    return access


def can_moderate(user, blueprint) -> bool:
    if is_admin(user):
        return True
    return choices.MODERATE_CODENAME in _grants(user, [blueprint.pk]).get(blueprint.pk, set())


def readable_blueprint_ids(user):
    """(ids readable in full, ids readable for team-owned entities only); None for 'all' (admins). Kept on the
    user object, like its team ids: one read per request however many selectors ask (a page asks several)."""
    if is_admin(user):
        return None, set()
    if user is None or not user.is_authenticated:
        return _readable_blueprint_ids(user)
    cached = getattr(user, "_portal_readable_blueprint_ids", None)
    if cached is None:
        cached = user._portal_readable_blueprint_ids = _readable_blueprint_ids(user)
    return set(cached[0]), set(cached[1])


def _readable_blueprint_ids(user):
    grants, owned_flags, team_ids = _read_grants(user)
    full, owned = set(), set()
    write_codenames = {VERB_CODENAMES[v] for v in ("register", "update", "unregister")}
    for blueprint_id, codenames in grants.items():
        if codenames & ({choices.MODERATE_CODENAME, VERB_CODENAMES["read"]} | write_codenames):
            full.add(blueprint_id)
    for blueprint_id, flags in owned_flags:
        if blueprint_id not in full and any((flags or {}).get(v) for v in VERB_CODENAMES):
            owned.add(blueprint_id)
    if user is not None and user.is_authenticated and getattr(user, "_portal_team_ids", None) is None:
        user._portal_team_ids = team_ids
    return full, owned


@cache
def _read_grants_sql():
    user_grants, group_grants = UserObjectPermission._meta.db_table, GroupObjectPermission._meta.db_table
    memberships = get_user_model().groups.through._meta.db_table
    return f"""
        SELECT (SELECT json_agg(json_build_array(g.object_pk, a.codename)) FROM (
                    SELECT p.object_pk, p.permission_id FROM {user_grants} p WHERE p.user_id = %s AND p.content_type_id = %s
                    UNION ALL
                    SELECT p.object_pk, p.permission_id FROM {group_grants} p
                     WHERE p.content_type_id = %s AND p.group_id IN (
                           SELECT m.group_id FROM {memberships} m WHERE m.user_id = %s
                           UNION SELECT gr.id FROM {Group._meta.db_table} gr WHERE gr.name = %s)
                ) g JOIN {Permission._meta.db_table} a ON a.id = g.permission_id)::text,
               (SELECT json_agg(json_build_array(b.id, b.permission_settings->'ownedByTeam'))
                  FROM {Blueprint._meta.db_table} b WHERE b.permission_settings <> '{{}}'::jsonb)::text,
               ARRAY(SELECT t.id FROM {Team._meta.db_table} t JOIN {memberships} m ON m.group_id = t.group_id
                      WHERE m.user_id = %s)
    """


def _read_grants(user):
    """What deciding the blueprints `user` reads needs, in one statement (every entity read of a member asks it):
    ({blueprint_id: codenames granted to the user, their groups or Member}, [(blueprint_id, its `ownedByTeam`
    flags)] of blueprints with permission settings, the ids of the user's teams)."""
    user_id = user.pk if user is not None and user.is_authenticated else None
    ct = _blueprint_content_type().pk
    with connection.cursor() as cursor:
        cursor.execute(_read_grants_sql(), [user_id, ct, ct, user_id, choices.MEMBERS_GROUP, user_id])
        grant_rows, owned_rows, team_ids = cursor.fetchone()
    grants = {}
    for object_pk, codename in json.loads(grant_rows) if grant_rows else ():
        grants.setdefault(int(object_pk), set()).add(codename)
    return grants, json.loads(owned_rows) if owned_rows else [], set(team_ids)


@dataclass(frozen=True)
class EntityReadRule:
    """Which entities one reader may read: the one predicate behind every read of entities, in the two forms the
    reads need — a Q for querysets (`entities_visible_to`, mirror values of the entity JSON) and SQL for the search
    compiler's hand-written subqueries (mirror rules) — built side by side from the same fields so they cannot
    drift. `full` None: every entity (admins, and the system itself)."""

    full: frozenset | None = None  # blueprint ids whose every entity is readable
    owned: frozenset = frozenset()  # blueprint ids whose entities are readable when one of `team_ids` owns them
    team_ids: frozenset = frozenset()

    @property
    def everything(self) -> bool:
        return self.full is None

    def within(self, blueprint_id) -> "EntityReadRule":
        """The rule for a read already narrowed to one blueprint's entities: no condition at all when the reader
        reads that blueprint in full, only the ownership test when they read its team-owned entities, nothing
        otherwise. A filter that restricts nothing costs the query its plan (a member's table page lost its
        parallel worker to `blueprint_id = ANY(...)` next to `blueprint_id = X`)."""
        if self.full is None or blueprint_id in self.full:
            return EVERY_ENTITY
        if blueprint_id in self.owned and self.team_ids:
            return EntityReadRule(full=frozenset(), owned=frozenset([blueprint_id]), team_ids=self.team_ids)
        return NO_ENTITY

    def q(self, via=""):
        """The rule as a Q on Entity, or on a model that reaches the entity through its foreign key `via`."""
        if self.full is None:
            return Q()
        prefix = f"{via}__" if via else ""
        condition = Q(**{f"{prefix}blueprint_id__in": self.full})
        if self.owned and self.team_ids:
            owned_by_team = Entity.teams.through.objects.filter(entity_id=OuterRef(f"{via}_id" if via else "pk"),
                                                                team_id__in=self.team_ids)
            condition |= Q(**{f"{prefix}blueprint_id__in": self.owned}) & Exists(owned_by_team)
        return condition

    def sql(self, alias) -> tuple[str, tuple]:
        """(condition, positional params): the catalog_entity row named `alias` is readable."""
        if self.full is None:
            return "TRUE", ()
        text, params = f"{alias}.blueprint_id = ANY(%s::bigint[])", (sorted(self.full),)
        if self.owned and self.team_ids:
            teams = f"{alias}_owner"
            text = (f"({text} OR ({alias}.blueprint_id = ANY(%s::bigint[]) AND EXISTS (SELECT 1 FROM "
                    f"{Entity.teams.through._meta.db_table} {teams} WHERE {teams}.entity_id = {alias}.id "
                    f"AND {teams}.team_id = ANY(%s::bigint[]))))")
            params += (sorted(self.owned), sorted(self.team_ids))
        return text, params


EVERY_ENTITY = EntityReadRule()  # what the system itself reads (automations, internal checks)
NO_ENTITY = EntityReadRule(full=frozenset())


def entity_read_rule(user) -> EntityReadRule:
    """The entities `user` may read (for the system itself, pass EVERY_ENTITY instead of a user)."""
    full, owned = readable_blueprint_ids(user)
    if full is None:
        return EVERY_ENTITY
    return EntityReadRule(full=frozenset(full), owned=frozenset(owned), team_ids=frozenset(user_team_ids(user)))
