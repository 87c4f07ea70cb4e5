"""Saved views a user may open on a blueprint table: their own and the ones shared with everyone."""
from django.db.models import Q

from catalog.models import SavedView


def saved_views_visible_to(user, blueprint):
    return (SavedView.objects.filter(Q(owner=user) | Q(shared=True), blueprint=blueprint)
            .select_related("owner").order_by("name", "owner__email"))


def saved_view_visible_to(user, blueprint, pk):
    """One saved view the user may open (their own or shared) on the blueprint, or None."""
    return saved_views_visible_to(user, blueprint).filter(pk=pk).first()
