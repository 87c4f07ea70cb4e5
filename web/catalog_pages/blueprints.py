"""`/catalog/`: the blueprints the user may read, with how many of their entities the user sees."""
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404
from django.shortcuts import render

from catalog.access import readable_blueprint_ids
from catalog.models import Blueprint
from web.catalog_pages.columns import blueprint_url
from catalog.selectors.entities import entities_visible_to


def blueprints_readable_by(user):
    """Blueprints with entities the user may read (all of them, or those their teams own)."""
    full, owned = readable_blueprint_ids(user)
    if full is None:
        return Blueprint.objects.all()
    return Blueprint.objects.filter(id__in=set(full) | set(owned))


def readable_blueprint_or_404(user, identifier):
    blueprint = blueprints_readable_by(user).filter(identifier=identifier).first()
    if blueprint is None:
        raise Http404(f"Blueprint {identifier!r} was not found.")
    return blueprint


@login_required
def blueprint_list(request):
    blueprints = list(blueprints_readable_by(request.user).order_by("title", "identifier"))
    counts = dict(entities_visible_to(request.user).order_by().values_list("blueprint_id").annotate(n=Count("id")))
    cards = [{"blueprint": bp, "url": blueprint_url(bp.identifier), "count": counts.get(bp.pk, 0)} for bp in blueprints]
    return render(request, "catalog/blueprint_list.html", {"cards": cards})
