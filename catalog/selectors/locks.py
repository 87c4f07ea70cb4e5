"""Permission-filtered reads of what can be locked: environments and running services, whose lock state is kept
in their properties (`locked`, `lockReason`, `lockedBy`, `lockedAt`, `lockedUntil`)."""
from catalog.models import Entity
from catalog.selectors.deployments import ENVIRONMENT, ENVIRONMENT_TYPES, RUNNING_SERVICE
from catalog.selectors.entities import entities_visible_to


def environments_visible_to(user):
    """Environment entities the user may read, production, staging, development first, then the others by name."""
    queryset = Entity.objects.filter(blueprint__identifier=ENVIRONMENT)
    rank = {kind: i for i, kind in enumerate(ENVIRONMENT_TYPES)}
    environments = list(entities_visible_to(user, queryset).only("id", "identifier", "title", "properties"))
    return sorted(environments, key=lambda e: (rank.get(e.properties.get("type"), len(rank)), e.identifier))


def locked_entities_visible_to(user, *, limit):
    """Up to `limit` locked environments, then locked running services, that the user may read (blueprint loaded)."""
    queryset = (Entity.objects.filter(blueprint__identifier__in=[ENVIRONMENT, RUNNING_SERVICE], properties__contains={"locked": True})
                .select_related("blueprint").order_by("blueprint__identifier", "identifier"))
    return sorted(entities_visible_to(user, queryset)[:limit],
                  key=lambda e: (e.blueprint.identifier != ENVIRONMENT, e.identifier))


def team_ids_by_identifier(blueprint_identifier, identifiers):
    """{entity identifier: ids of the teams owning it} of the blueprint's entities named, in one query. For entities
    the caller has already read through a permission-filtered selector (who owns them decides who may run actions)."""
    result = {}
    rows = Entity.teams.through.objects.filter(entity__blueprint__identifier=blueprint_identifier,
                                               entity__identifier__in=list(identifiers))
    for identifier, team_id in rows.values_list("entity__identifier", "team_id"):
        result.setdefault(identifier, set()).add(team_id)
    return result
