"""Action create/update/delete and the action's execute/approve permissions.

A new action has no grants: nobody but admins may see, execute or approve it (Port's default) until
`action_permissions_update` grants `execute` / `approve` to roles, users or teams. Grants are guardian
object permissions on the action (see actions/access.py); `ownedByTeam` flags and jq `policy` strings
live in `action.permission_settings`.
"""
import json

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Q
from guardian.models import GroupObjectPermission, UserObjectPermission

from actions.access import APPROVE, EXECUTE
from actions.credentials import invocation_unmasked, write_only_changes
from actions.definitions import action_definition_clean, duration_seconds
from actions.models import Action
from actions.serializers import action_json
from audit import choices as audit_choices
from audit.services import audit_record
from catalog import choices as catalog_choices
from catalog.models import Blueprint, Team
from catalog.services.permissions import _clean_grant, _grant_rows, _set_grant
from portal.errors import Conflict, ValidationFailed
from portal.jq import JqError, jq_compile_check

VERBS = {"execute": EXECUTE, "approve": APPROVE}
ROLES = (catalog_choices.ROLE_ADMIN, catalog_choices.ROLE_MEMBER)


def _definition_context(exclude=None):
    blueprints = {bp.identifier: bp for bp in Blueprint.objects.all()}
    actions = set(Action.objects.exclude(identifier=exclude).values_list("identifier", flat=True))
    return blueprints, actions


def _apply(action, clean):
    trigger = clean["trigger"]
    action.title = clean["title"]
    action.icon = clean["icon"]
    action.description = clean["description"]
    action.trigger = trigger
    action.invocation_method = clean["invocationMethod"]
    action.invocation_method_text = json.dumps(clean["invocationMethod"])
    action.required_approval = clean["requiredApproval"]
    action.approval_notification = clean["approvalNotification"]
    action.publish = clean["publish"]
    action.quota = clean["quota"]
    action.approval_timeout_seconds = duration_seconds(clean["approvalTimeout"])
    action.run_timeout_seconds = duration_seconds(clean["runTimeout"])
    action.ttl = clean["ttl"]
    action.notifications = clean["notifications"]
    action.trigger_type = trigger["type"]
    action.operation = trigger.get("operation", "")
    action.blueprint_identifier = trigger.get("blueprintIdentifier") or trigger.get("event", {}).get("blueprintIdentifier", "")


WRITE_ONLY_HOLDERS = ("invocationMethod", "approvalNotification")


def _unmasked(data, stored):
    """The definition with "[redacted]" in the write-only places of its invocation method and approval notification
    put back to the values `stored` ({key: stored value}, empty for a new action) holds."""
    if not isinstance(data, dict):
        return data
    return {**data, **{key: invocation_unmasked(data[key], stored.get(key), root=key)
                       for key in WRITE_ONLY_HOLDERS if isinstance(data.get(key), dict)}}


def _write_only_holders(action):
    return {"invocationMethod": action.invocation, "approvalNotification": action.approval_notification}


def blueprint_delete_check(identifier):
    """Registered with portal.events: a blueprint that actions trigger on or write to cannot be deleted."""
    using = sorted(Action.objects.filter(Q(blueprint_identifier=identifier) | Q(invocation_method__blueprintIdentifier=identifier))
                   .values_list("identifier", flat=True))
    if using:
        raise Conflict(f"Blueprint {identifier!r} is used by actions {using}; change or delete them first.")


def _audit(actor, verb, kind, action, *, before=None, after=None, message=""):
    audit_record(actor=actor, verb=verb, action=kind, resource_type="action", identifier=action.identifier,
                 blueprint=action.blueprint_identifier, before=before, after=after, message=message)


@transaction.atomic
def action_create(*, actor, data):
    identifier = data.get("identifier") if isinstance(data, dict) else None
    identifier = identifier if isinstance(identifier, str) else None  # anything else is refused by the validation
    blueprints, actions = _definition_context()
    if identifier in actions:
        raise Conflict(f"Action {identifier!r} already exists.")
    clean = action_definition_clean(_unmasked(data, {}), blueprints=blueprints, actions=actions | {identifier})
    action = Action(identifier=clean["identifier"], created_by=actor.label, updated_by=actor.label)
    _apply(action, clean)
    try:
        with transaction.atomic():
            action.save()
    except IntegrityError:  # created concurrently since the check above
        raise Conflict(f"Action {identifier!r} already exists.")
    _audit(actor, audit_choices.ACTION_CREATED, audit_choices.AuditAction.CREATE, action, after=action_json(action))
    extend_ttl_action_ensure(actor=actor, action=action)
    return action


@transaction.atomic
def action_update(*, actor, action, data):
    """PUT: the body replaces the definition; the identifier cannot change."""
    action = Action.objects.select_for_update().get(pk=action.pk)
    if not isinstance(data, dict):
        raise ValidationFailed("must be a JSON object", path="body")
    if data.get("identifier", action.identifier) != action.identifier:
        raise ValidationFailed("an action's identifier cannot be changed", path="identifier")
    before, stored = action_json(action), _write_only_holders(action)
    blueprints, actions = _definition_context()
    clean = action_definition_clean({**_unmasked(data, stored), "identifier": action.identifier}, blueprints=blueprints,
                                    actions=actions)
    _apply(action, clean)
    action.updated_by = actor.label
    action.save()
    after = _write_only_holders(action)
    changed = [path for key in WRITE_ONLY_HOLDERS for path in write_only_changes(stored[key], after[key], root=key)]
    _audit(actor, audit_choices.ACTION_UPDATED, audit_choices.AuditAction.UPDATE, action, before=before,
           after=action_json(action), message=f"Write-only values changed: {', '.join(changed)}." if changed else "")
    extend_ttl_action_ensure(actor=actor, action=action)
    return action


def extend_ttl_action_identifier(blueprint_identifier):
    return f"extend_ttl_{blueprint_identifier}"


def extend_ttl_action_ensure(*, actor, action):
    """A CREATE action with a TTL policy brings the built-in "Extend TTL" DAY-2 action of its blueprint (EXTEND_TTL
    backend), runnable by every member: the extension itself admits only the entity's owner and those who may
    run the CREATE action (actions.services.ttl). Created once; an admin may edit or unpublish it afterwards."""
    if not action.ttl or action.operation != "CREATE":
        return None
    identifier = extend_ttl_action_identifier(action.blueprint_identifier)
    existing = (Action.objects.filter(identifier=identifier).first()
                or Action.objects.filter(blueprint_identifier=action.blueprint_identifier,
                                         invocation_method__type="EXTEND_TTL").first())
    if existing is not None:  # the built-in one, or one the platform team wrote (the starter `extend_ttl`)
        return existing
    extend = action_create(actor=actor, data={
        "identifier": identifier, "title": "Extend TTL", "icon": "Clock",
        "description": f"Extend the time to live by the policy of {action.identifier!r}, never past its maximum.",
        "trigger": {"type": "self-service", "operation": "DAY-2", "blueprintIdentifier": action.blueprint_identifier,
                    "userInputs": {"properties": {}, "required": []}},
        "invocationMethod": {"type": "EXTEND_TTL"},
    })
    action_permissions_update(actor=actor, action=extend, data={"execute": {"roles": ["Member"]}})
    return extend


def _permissions_clear(action):
    ct = ContentType.objects.get_for_model(Action)
    UserObjectPermission.objects.filter(content_type=ct, object_pk=str(action.pk)).delete()
    GroupObjectPermission.objects.filter(content_type=ct, object_pk=str(action.pk)).delete()


@transaction.atomic
def action_delete(*, actor, action):
    """Refused (409) while the action has runs: runs keep their action for the record. Unpublish it instead."""
    action = Action.objects.select_for_update().get(pk=action.pk)
    runs = action.runs.count()
    if runs:
        raise Conflict(f"Action {action.identifier!r} has {runs} run{'s' if runs != 1 else ''}; an action with runs "
                       "cannot be deleted (they keep it for the record). Set publish to false to retire it.")
    before = action_json(action)
    _permissions_clear(action)
    action.delete()
    _audit(actor, audit_choices.ACTION_DELETED, audit_choices.AuditAction.DELETE, action, before=before)


# --- permissions ------------------------------------------------------------------------------------------

def action_permissions_json(action):
    users, groups = _grant_rows(action)
    settings = action.permission_settings or {}
    owned, policies = settings.get("ownedByTeam", {}), settings.get("policy", {})
    result = {}
    for verb, codename in VERBS.items():
        result[verb] = {
            "roles": [catalog_choices.ROLE_ADMIN]
            + ([catalog_choices.ROLE_MEMBER] if (codename, catalog_choices.MEMBERS_GROUP) in groups else []),
            "users": sorted(email for c, email in users if c == codename),
            "teams": sorted(name for c, name in groups if c == codename and name != catalog_choices.MEMBERS_GROUP),
            "ownedByTeam": bool(owned.get(verb)),
            "policy": policies.get(verb),
        }
    return result


def _action_permission(codename):
    return Permission.objects.get(content_type=ContentType.objects.get_for_model(Action), codename=codename)


@transaction.atomic
def action_permissions_update(*, actor, action, data):
    """PATCH `{execute: {roles, users, teams, ownedByTeam, policy}, approve: {...}}`: only the verbs and keys
    given change; each list given replaces the stored one. Roles are Admin (always implied) and Member."""
    action = Action.objects.select_for_update().get(pk=action.pk)
    if not isinstance(data, dict):
        raise ValidationFailed("must be an object of permission grants", path="body")
    unknown = set(data) - set(VERBS)
    if unknown:
        raise ValidationFailed("unknown permission (execute or approve)", path=sorted(unknown)[0])
    before = action_permissions_json(action)
    grants = {}
    for verb in VERBS:
        if verb not in data:
            continue
        grant = dict(data[verb]) if isinstance(data[verb], dict) else data[verb]
        policy = grant.pop("policy", None) if isinstance(grant, dict) else None
        grant = _clean_grant(grant, verb)
        if policy is not None:
            if not isinstance(policy, str) or not policy.strip():
                raise ValidationFailed("must be a jq expression or null", path=f"{verb}.policy")
            try:
                jq_compile_check(policy)
            except JqError as exc:
                raise ValidationFailed(f"does not compile: {exc.message}", path=f"{verb}.policy")
        bad = [r for r in grant.get("roles", []) if r not in ROLES]
        if bad:
            raise ValidationFailed(f"unknown role {bad[0]!r} (Admin or Member)", path=f"{verb}.roles")
        grants[verb] = (grant, policy, "policy" in data[verb])
    emails = {e for grant, _, _ in grants.values() for e in grant.get("users", [])}
    names = {t for grant, _, _ in grants.values() for t in grant.get("teams", [])}
    users_by_email = {u.email: u for u in get_user_model().objects.filter(email__in=emails)}
    teams_by_name = {t.name: t for t in Team.objects.filter(name__in=names).select_related("group")}
    settings = dict(action.permission_settings or {})
    owned, policies = dict(settings.get("ownedByTeam", {})), dict(settings.get("policy", {}))
    for verb, (grant, policy, policy_given) in grants.items():
        _set_grant(action, _action_permission(VERBS[verb]), grant, verb, users_by_email, teams_by_name)
        if "ownedByTeam" in grant:
            owned[verb] = grant["ownedByTeam"]
        if policy_given:
            policies[verb] = policy
    settings["ownedByTeam"], settings["policy"] = owned, {k: v for k, v in policies.items() if v is not None}
    action.permission_settings = settings
    action.save(update_fields=["permission_settings", "updated_at"])
    after = action_permissions_json(action)
    _audit(actor, audit_choices.ACTION_PERMISSIONS_UPDATED, audit_choices.AuditAction.UPDATE, action, before=before,
           after=after, message="Execute/approve permissions changed.")
    return after
