"""The TTL policies in force: which CREATE action's `ttl` governs each (blueprint, timer property)."""
from actions.choices import Operation
from actions.models import Action


def ttl_policies() -> dict:
    """{(blueprint identifier, timer property): the CREATE action whose `ttl` policy governs it}. When several
    actions define one for the same timer, the first by identifier governs it."""
    policies = {}
    for action in (Action.objects.filter(operation=Operation.CREATE, ttl__isnull=False).exclude(blueprint_identifier="")
                   .order_by("identifier")):
        prop = (action.ttl or {}).get("property")
        if prop:
            policies.setdefault((action.blueprint_identifier, prop), action)
    return policies
