"""Reads of teams for the pages' pickers and filters. Team names are not secret: every signed-in user sees the
teams owning the entities they read, and the team filters and inputs take any team's name."""
from catalog.models import Team


def team_names(*, limit=None):
    """Every team's name, alphabetically; with `limit`, at most that many."""
    names = Team.objects.order_by("name").values_list("name", flat=True)
    return list(names if limit is None else names[:limit])
