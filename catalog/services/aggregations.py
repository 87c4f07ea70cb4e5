"""Aggregation values kept current: the entity writers ask `aggregation_sources` which entities a change can move
(before and after it), and `aggregates_refresh` recomputes those and writes what changed, in the writer's
transaction; the blueprint writers keep every blueprint's `aggregated_by` and recompute a changed aggregation
over all its blueprint's entities. Scorecards reading a moved value are re-evaluated, their level changes
announced as entity updates.

A CI deployment report instead queues the refresh after its commit (`aggregates_refresh_queue`, an outbox message
in the report's transaction, due AGGREGATES_REFRESH_DELAY_SECONDS later; the worker runs `aggregates_refresh_after`,
one refresh for every message pending then): the report stays a fixed handful of statements however many
aggregations and scorecards read deployments, a burst of reports costs one recount per delay rather than one
each, and the refresh locks the entities it recomputes before reading, so reports of one service to several
environments at once, which lock different rows, cannot overwrite each other's counts with values computed
before the other committed.
"""
from django.conf import settings
from django.db import transaction

from catalog.models import Blueprint, Entity
from catalog.selectors.aggregations import (aggregation_dependencies, aggregation_sources_of, aggregation_values,
                                            blueprint_graph)
from catalog.services.row_locks import NO_KEY_UPDATE, blueprints_lock, entity_rows_lock_by_id
from catalog.services.scorecards import scorecard_standings_announce, scorecards_evaluate
from portal.outbox import outbox_coalesce, outbox_enqueue
from portal.retry import retry_on_conflict


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


def aggregates_refresh_queue(*, changed, sources=None):
    """In the writer's transaction: refresh, after its commit, what the entities `changed` ([(blueprint, ids)])
    can move now, plus `sources` ({blueprint identifier: ids} the writer found before a relation change). One
    outbox row; nothing when nothing aggregates over them."""
    from catalog.tasks import aggregates_refresh_task

    changed = [[bp.identifier, sorted(ids)] for bp, ids in changed if bp.aggregated_by and ids]
    sources = {own: sorted(ids) for own, ids in (sources or {}).items() if ids}
    if changed or sources:
        outbox_enqueue(aggregates_refresh_task, [changed, sources], countdown=settings.AGGREGATES_REFRESH_DELAY_SECONDS)


@retry_on_conflict
@transaction.atomic
def aggregates_refresh_after(*, actor, changed, sources):
    """The worker's half of `aggregates_refresh_queue`, for its message and every other one pending (taken with
    it, outbox_coalesce: reports arriving faster than refreshes share one): the entities whose values the changed
    ones can move (walked now, from those that still exist) and the sources, locked FOR NO KEY UPDATE in the
    catalog's lock order (row_locks.py: their blueprints FOR SHARE, then the rows sorted by blueprint and
    identifier) and recomputed from a snapshot taken after the lock, so whatever committed before is counted.
    Returns {blueprint: [moved ids]}."""
    from catalog.tasks import aggregates_refresh_task

    batch = [(changed, sources), *outbox_coalesce(aggregates_refresh_task)]
    by_blueprint, found = {}, {}
    for batch_changed, batch_sources in batch:
        for identifier, ids in batch_changed:
            by_blueprint.setdefault(identifier, set()).update(ids)
        for own, ids in batch_sources.items():
            found.setdefault(own, set()).update(ids)
    graph = blueprint_graph()
    blueprints = Blueprint.objects.in_bulk(list(by_blueprint), field_name="identifier")
    walked = aggregation_sources_of([(blueprints[i], ids) for i, ids in sorted(by_blueprint.items()) if i in blueprints],
                                    graph=graph)
    for own, ids in walked.items():
        found.setdefault(own, set()).update(ids)
    if not found:
        return {}
    blueprints_lock(list(found))
    present = entity_rows_lock_by_id({pk for ids in found.values() for pk in ids}, NO_KEY_UPDATE)
    return aggregates_refresh(actor=actor, sources={own: ids & present for own, ids in found.items()}, graph=graph)
