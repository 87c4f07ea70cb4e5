"""The actions a user may run on one entity (its page's action buttons)."""
from actions.access import actions_visible_to, can_execute
from actions.choices import Operation, TriggerType
from catalog.access import is_admin, user_team_ids
from catalog.selectors.conditions import conditions_met


def actions_runnable_on(user, entity, team_ids):
    """DAY-2 and DELETE self-service actions of the entity's blueprint the user may run on the entity (owned by the
    teams `team_ids`): granted (or ownedByTeam through a team owning it) and, when the action has a condition,
    matching it. The conditions are evaluated together, in one query; one that no longer compiles fails (run_request
    would refuse the run too). By operation, then title."""
    actions = list(actions_visible_to(user).filter(
        publish=True, blueprint_identifier=entity.blueprint.identifier, trigger_type=TriggerType.SELF_SERVICE,
        operation__in=[Operation.DAY2, Operation.DELETE]).order_by("operation", "title"))
    mine = user_team_ids(user)
    runnable = []
    for action in actions:
        owned_only = action.permission_settings.get("ownedByTeam", {}).get("execute")
        # Visible and not ownedByTeam means granted; ownedByTeam actions are asked per entity (rarely many).
        if is_admin(user) or not owned_only or (mine & team_ids) or can_execute(user, action, team_ids):
            runnable.append(action)
    conditions = {action.pk: action.trigger["condition"] for action in runnable if action.trigger.get("condition")}
    if conditions:
        met = conditions_met(user, entity, conditions)
        runnable = [action for action in runnable if action.pk not in conditions or action.pk in met]
    return runnable
