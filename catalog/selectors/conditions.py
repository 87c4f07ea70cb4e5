"""Whether one entity meets search conditions (rule sets, as the search API takes them) as a user sees it: several
conditions in one query, e.g. the `condition` of each action that may run on it."""
from django.db.models import Exists

from catalog.models import Entity
from catalog.selectors.search import search_queryset
from portal.errors import PortalError


def conditions_met(user, entity, conditions):
    """The keys of `conditions` ({key: rule set}) that the entity meets, read as `user` (an entity the user may not
    read meets none). A condition that does not compile (it may name a property since removed) is not met."""
    checks = {}
    for i, (key, rule_set) in enumerate(conditions.items()):
        try:
            checks[f"c{i}"] = (key, Exists(search_queryset(rule_set, user=user, blueprint=entity.blueprint,
                                                           base=Entity.objects.filter(pk=entity.pk))))
        except PortalError:
            continue
    if not checks:
        return set()
    matches = Entity.objects.filter(pk=entity.pk).values(**{name: check for name, (_, check) in checks.items()}).first() or {}
    return {key for name, (key, _) in checks.items() if matches.get(name)}
