"""Permission-filtered reads of the environments page: TTL timers of entities a user may read (and owns), with
what each row needs — the run that created the entity, its owning teams, the blueprint's DELETE actions — each in
one query whatever the number of rows."""
from django.db.models import Exists, OuterRef, Q

from actions.choices import Operation, TriggerType
from actions.models import Action, Run
from actions.selectors.ttl import ttl_policies
from catalog.access import is_admin
from catalog.models import Entity, Timer
from catalog.selectors.entities import entities_visible_to


def owned_by(user):
    """Q over Timer: the entity's owner is the user — requester of the run that created it, or its creator."""
    created = Run.objects.filter(result_entity_id=OuterRef("entity_id"), requested_by=user)
    condition = Q(Exists(created))
    label = user.email or user.get_username()
    if label:
        condition |= Q(entity__created_by=label)
    return condition


def ttl_timers_visible_to(user, *, everyone=False, policies=None, limit=None):
    """TTL timers of entities the user may read and (unless `everyone`, for admins) owns; soonest expiry first.
    `policies` are `ttl_policies()` when the caller has them already."""
    policies = ttl_policies() if policies is None else policies
    if not policies:
        return Timer.objects.none()
    governed = Q()
    for blueprint_identifier, prop in policies:
        governed |= Q(entity__blueprint__identifier=blueprint_identifier, property=prop)
    timers = (Timer.objects.filter(governed, entity_id__in=entities_visible_to(user).values("pk"))
              .select_related("entity__blueprint").order_by("expires_at", "id"))
    if not (everyone and is_admin(user)):
        timers = timers.filter(owned_by(user))
    return timers[:limit] if limit else timers


def creating_runs_by_entity(entity_ids) -> dict:
    """{entity id: the run that created it (the oldest run with it as result)} in one query."""
    creating = {}
    for run in (Run.objects.filter(result_entity_id__in=list(entity_ids)).select_related("action", "requested_by")
                .order_by("-created_at")):
        creating[run.result_entity_id] = run  # oldest last: the creating run wins
    return creating


def entity_team_ids_by_entity(entity_ids) -> dict:
    """{entity id: {team ids}} in one query."""
    result = {}
    for entity_id, team_id in Entity.teams.through.objects.filter(entity_id__in=list(entity_ids)).values_list(
            "entity_id", "team_id"):
        result.setdefault(entity_id, set()).add(team_id)
    return result


def delete_actions_by_blueprint(blueprint_identifiers) -> dict:
    """{blueprint identifier: [its published self-service DELETE actions, by identifier]} in one query. Who may
    run each is asked per row (RunnableActions on the page, run_request on submit)."""
    deletes = {}
    for action in (Action.objects.filter(operation=Operation.DELETE, trigger_type=TriggerType.SELF_SERVICE, publish=True,
                                         blueprint_identifier__in=list(blueprint_identifiers)).order_by("identifier")):
        deletes.setdefault(action.blueprint_identifier, []).append(action)
    return deletes
