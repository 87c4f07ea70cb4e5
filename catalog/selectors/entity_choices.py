"""The entities a user may pick in an action's `entity` input: of one blueprint, matching the input's dataset (a
rule set), readable by the user, narrowed by typed text, in the input's sort order."""
from django.db.models import Q

from catalog.models import Blueprint, Entity
from catalog.selectors.entities import entities_visible_to
from catalog.selectors.search import search_queryset

SORT_FIELDS = {"$identifier": "identifier", "$title": "title", "$createdAt": "created_at", "$updatedAt": "updated_at"}


def _order(sort):
    """An input's `sort` ({"property": "$title" or a property, "order": "ASC"/"DESC"}) as an ORDER BY."""
    if isinstance(sort, dict) and isinstance(sort.get("property"), str):
        column = SORT_FIELDS.get(sort["property"]) or f"properties__{sort['property']}"
        descending = str(sort.get("order", "ASC")).upper() == "DESC"
        return ["-" + column if descending else column, "identifier"]
    return ["title", "identifier"]


def entity_choices_visible_to(user, blueprint_identifier, dataset, *, text="", limit, sort=None):
    """([(identifier, title)], more) of the entities of the blueprint that match the dataset rules (if any) and that
    the user may read, narrowed by `text` (identifier or title contains), at most `limit` of them, in `sort` order
    (else by title); one query plus the compile's own lookups. An unknown blueprint has none; a dataset the
    catalog cannot compile raises ValidationFailed naming `dataset`."""
    blueprint = Blueprint.objects.filter(identifier=blueprint_identifier).first()
    if blueprint is None:
        return [], False
    base = Entity.objects.filter(blueprint=blueprint)
    if text:
        base = base.filter(Q(identifier__icontains=text) | Q(title__icontains=text))
    if dataset:
        queryset = search_queryset(dataset, user=user, blueprint=blueprint, base=base, path="dataset")
    else:
        queryset = entities_visible_to(user, base)
    rows = list(queryset.order_by(*_order(sort)).values_list("identifier", "title")[: limit + 1])
    return rows[:limit], len(rows) > limit


def entity_titles_visible_to(user, blueprint_identifier, identifiers):
    """{identifier: title} of those of the blueprint's entities named that the user may read."""
    queryset = Entity.objects.filter(blueprint__identifier=blueprint_identifier, identifier__in=list(identifiers))
    return dict(entities_visible_to(user, queryset).values_list("identifier", "title"))
