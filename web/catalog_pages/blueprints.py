"""`/catalog/`: the blueprints the user may read, with how many of their entities the user sees."""
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from catalog.selectors.blueprints import blueprint_visible_to, blueprints_visible_to, entity_counts_visible_to
from web.catalog_pages.columns import blueprint_url


def readable_blueprint_or_404(user, identifier):
    blueprint = blueprint_visible_to(user, identifier)
    if blueprint is None:
        raise Http404(f"Blueprint {identifier!r} was not found.")
    return blueprint


@login_required
def blueprint_list(request):
    blueprints = list(blueprints_visible_to(request.user))
    counts = entity_counts_visible_to(request.user)
    cards = [{"blueprint": bp, "url": blueprint_url(bp.identifier), "count": counts.get(bp.pk, 0)} for bp in blueprints]
    return render(request, "catalog/blueprint_list.html", {"cards": cards})
