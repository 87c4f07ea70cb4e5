"""Permission-filtered reads of one entity's relations, both ways, for its page: only the entities at the other end
that the user may read."""
from django.db.models import Count, F, Window
from django.db.models.functions import RowNumber

from catalog.models import Relation
from catalog.selectors.entities import entities_visible_to


def relations_from_visible_to(user, entity):
    """The entity's own relations (it is the source) whose target the user may read, targets and their blueprints
    loaded, in relation and position order."""
    visible = entities_visible_to(user).values("pk")
    return list(Relation.objects.filter(source=entity, target__in=visible).select_related("target__blueprint")
                .order_by("relation", "position", "id"))


def relations_to_visible_to(user, entity, *, per_group):
    """Relations to the entity whose source the user may read, grouped by the source's blueprint and the relation:
    the first `per_group` of each group by source identifier, each edge with `group_size` (the group's size) and
    its source and the source's blueprint loaded, in one query."""
    visible = entities_visible_to(user).values("pk")
    partition = [F("source__blueprint_id"), F("relation")]
    return list(Relation.objects.filter(target=entity, source__in=visible)
                .annotate(rank=Window(RowNumber(), partition_by=partition, order_by=[F("source__identifier").asc()]),
                          group_size=Window(Count("id"), partition_by=partition))
                .filter(rank__lte=per_group)
                .select_related("source__blueprint")
                .order_by("source__blueprint__identifier", "relation", "rank"))
