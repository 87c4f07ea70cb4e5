"""Permission-filtered reads of actions for the action pages: the self-service actions a user is offered."""
from actions.access import actions_visible_to
from actions.choices import TriggerType
from actions.models import Action
from catalog.models import Blueprint


def runnable_actions_visible_to(user):
    """Self-service actions the user may run, published ones only (admins see unpublished ones in the admin)."""
    return actions_visible_to(user, Action.objects.filter(trigger_type=TriggerType.SELF_SERVICE, publish=True))


def runnable_action_visible_to(user, identifier):
    """The self-service action `identifier` if the user is offered it, else None."""
    return runnable_actions_visible_to(user).filter(identifier=identifier).first()


def action_groups_visible_to(user) -> list:
    """The actions offered to the user by blueprint, in the catalog's order: [{identifier, title, actions}]."""
    actions = list(runnable_actions_visible_to(user).order_by("blueprint_identifier", "title", "identifier"))
    titles = dict(Blueprint.objects.filter(identifier__in={a.blueprint_identifier for a in actions})
                  .values_list("identifier", "title"))
    groups = {}
    for action in actions:
        blueprint = action.blueprint_identifier
        groups.setdefault(blueprint, {"identifier": blueprint, "title": titles.get(blueprint) or blueprint,
                                      "actions": []})["actions"].append(action)
    return list(groups.values())
