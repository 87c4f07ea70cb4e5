"""Aggregation values kept current: the entity writers ask `aggregation_sources` which entities a change can move
(before and after it), and `aggregates_refresh` recomputes those and writes what changed, in the writer's
transaction; the blueprint writers keep every blueprint's `aggregated_by` and recompute a changed aggregation
over all its blueprint's entities. Scorecards reading a moved value are re-evaluated, their level changes
announced as entity updates."""
from catalog.models import Blueprint, Entity
from catalog.selectors.aggregations import aggregation_dependencies, aggregation_values
from catalog.services.scorecards import scorecard_standings_announce, scorecards_evaluate


def aggregates_refresh(*, actor, sources, written_ids=(), graph=None):
    """Recompute the aggregation values of `sources` ({blueprint identifier: entity ids}) and store those that
    changed, then re-evaluate the scorecards of the entities whose values moved (except `written_ids`, whose writer
    evaluates them itself). `graph`: the writer's blueprint_graph(), if it read one. Returns {blueprint identifier:
    [moved ids]}."""
    moved = {}
    if not sources:
        return moved
    blueprints = Blueprint.objects.in_bulk(list(sources), field_name="identifier")
    for identifier, ids in sorted(sources.items()):
        blueprint = blueprints.get(identifier)
        if blueprint is None or not blueprint.aggregation_properties:
            continue
        current = dict(Entity.objects.filter(pk__in=list(ids)).values_list("pk", "aggregates"))
        values = aggregation_values(blueprint, current, graph=graph)  # only entities that still exist
        updates = [Entity(pk=pk, aggregates=value) for pk, value in sorted(values.items()) if current[pk] != value]
        if updates:
            Entity.objects.bulk_update(updates, ["aggregates"], batch_size=1000)
        moved[identifier] = [e.pk for e in updates]
        others = [pk for pk in moved[identifier] if pk not in written_ids]
        if others and blueprint.scorecards:
            scorecard_standings_announce(actor, blueprint, scorecards_evaluate(blueprint, others))
    return moved


def aggregated_by_rebuild():
    """Every blueprint's `aggregated_by` from the definitions as they are now (blueprint writers, under their lock).
    Returns the identifiers of the blueprints whose list changed."""
    rows = list(Blueprint.objects.values_list("identifier", "relations", "aggregation_properties", "aggregated_by"))
    dependencies = aggregation_dependencies([(i, r, a) for i, r, a, _ in rows])
    changed = [i for i, _, _, before in rows if (before or []) != dependencies[i]]
    for identifier in changed:
        Blueprint.objects.filter(identifier=identifier).update(aggregated_by=dependencies[identifier])
    return changed


def aggregates_recompute(*, actor, blueprint):
    """All of `blueprint`'s entities (its aggregation properties changed)."""
    return aggregates_refresh(actor=actor, sources={
        blueprint.identifier: list(Entity.objects.filter(blueprint=blueprint).values_list("pk", flat=True))})
