"""`/scorecards/`: the scorecards of the blueprints the user may read. `/scorecards/<blueprint>/<scorecard>/`: a
scorecard's maturity dashboard — how many entities stand at each level, overall and per team, the trend from
beat's daily snapshots, the rules failing most often — and, with `?level=` or `?failing=`, the entities at that
level or failing that rule, each a link to its entity page (which says what to fix)."""
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from catalog.selectors.blueprints import blueprints_visible_to
from catalog.selectors.scorecard_dashboard import scorecard_dashboard_visible_to, scorecard_entities_visible_to
from catalog.selectors.scorecards import scorecard_find
from portal.errors import NotFound
from web.catalog_pages.blueprints import readable_blueprint_or_404
from web.catalog_pages.columns import blueprint_url, entity_url, team_url

TREND_WIDTH, TREND_HEIGHT = 600, 160


@login_required
def scorecard_list(request):
    cards = [{"blueprint": bp, "scorecard": scorecard, "url": dashboard_url(bp.identifier, scorecard["identifier"])}
             for bp in blueprints_visible_to(request.user) for scorecard in bp.scorecards]
    return render(request, "catalog/scorecard_list.html", {"cards": cards})


def dashboard_url(blueprint, scorecard):
    return f"/scorecards/{blueprint}/{scorecard}/"


def _trend(history, levels):
    """SVG polylines (one per level) of the daily counts, scaled to the largest day."""
    if not history or len(history) < 2:
        return []
    top = max(max(sum(counts.values()) for _, counts in history), 1)
    step = TREND_WIDTH / (len(history) - 1)
    lines = []
    for level in levels:
        points = " ".join(f"{i * step:.1f},{TREND_HEIGHT - counts.get(level['title'], 0) * TREND_HEIGHT / top:.1f}"
                          for i, (_, counts) in enumerate(history))
        lines.append({"level": level["title"], "color": level["color"], "points": points})
    return lines


@login_required
def scorecard_dashboard(request, blueprint, scorecard):
    bp = readable_blueprint_or_404(request.user, blueprint)
    try:
        definition = scorecard_find(bp, scorecard)
    except NotFound as exc:
        raise Http404(exc.message)
    dashboard = scorecard_dashboard_visible_to(request.user, bp, definition)
    level, failing = request.GET.get("level") or None, request.GET.get("failing") or None
    listed = None
    if level or failing:
        rows = scorecard_entities_visible_to(request.user, bp, definition, level=level, failing_rule=failing)
        listed = [{"identifier": i, "title": t or i, "level": lv, "url": entity_url(bp.identifier, i)} for i, t, lv in rows]
    total = max(dashboard.total, 1)
    colours = {lv["title"]: lv["color"] for lv in definition["levels"]}
    return render(request, "catalog/scorecard_dashboard.html", {
        "blueprint": bp, "blueprint_url": blueprint_url(bp.identifier), "scorecard": definition,
        "dashboard": dashboard, "url": dashboard_url(bp.identifier, definition["identifier"]),
        "levels": [{"title": t, "count": n, "color": colours[t], "percent": round(100 * n / total)}
                   for t, n in dashboard.levels.items()],
        "teams": [{"name": name, "url": team_url(name), "levels": [{"title": t, "count": n, "color": colours.get(t, "")}
                                            for t, n in counts.items()]} for name, counts in dashboard.teams.items()],
        "trend": _trend(dashboard.history, definition["levels"]), "trend_width": TREND_WIDTH,
        "trend_height": TREND_HEIGHT, "listed": listed, "listed_level": level,
        "listed_rule": next((r["title"] for r in definition["rules"] if r["identifier"] == failing), failing),
    })
