"""The actions that lock and unlock: the starter DAY-2 actions `lock_service` / `unlock_service` (on a running
service) and `lock_environment` / `unlock_environment` (on an environment)."""
from actions.choices import TriggerType
from actions.models import Action

LOCK_ACTIONS = {
    ("service", "lock"): "lock_service",
    ("service", "unlock"): "unlock_service",
    ("environment", "lock"): "lock_environment",
    ("environment", "unlock"): "unlock_environment",
}


def lock_actions():
    """{(scope, op): Action} of the published self-service lock actions that exist. Whether a user may run one is
    asked per target (actions.access.can_execute): the page shows the lock state to every reader."""
    found = {a.identifier: a for a in Action.objects.filter(identifier__in=LOCK_ACTIONS.values(), publish=True,
                                                            trigger_type=TriggerType.SELF_SERVICE)}
    return {key: found[identifier] for key, identifier in LOCK_ACTIONS.items() if identifier in found}
