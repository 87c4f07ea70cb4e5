from django.contrib.auth import get_user_model
from django.db.models import Prefetch

from catalog.access import is_admin
from catalog.models import Team
from catalog.services.teams import team_create, team_delete, team_json, team_update
from portal.api.base import ApiView, ok, require
from portal.errors import NotFound
from portal.datetimes import instant_text


def _teams_with_members():
    members = get_user_model().objects.exclude(email="").order_by("email").only("email")
    return Team.objects.select_related("group").prefetch_related(Prefetch("group__user_set", queryset=members))


def _team_json(team):
    """`team_json` plus timestamps; members come from the prefetch, not one query per team."""
    members = [user.email for user in team.group.user_set.all()]
    return {**team_json(team, members), "createdAt": instant_text(team.created_at), "updatedAt": instant_text(team.updated_at)}


def _team_get(name):
    team = _teams_with_members().filter(name=name).first()
    if team is None:
        raise NotFound(f"Team {name!r} was not found.")
    return team


def _render(name):
    return _team_json(_team_get(name))


class TeamListView(ApiView):
    def get(self, request):
        return ok(teams=[_team_json(team) for team in _teams_with_members().order_by("name")])

    def post(self, request):
        require(is_admin(request.user), "Only admins may create teams.")
        team = team_create(actor=self.actor(), data=self.body())
        return ok(status=201, team=_render(team.name))


class TeamDetailView(ApiView):
    def get(self, request, name):
        return ok(team=_render(name))

    def _update(self, request, name, partial):
        team = _team_get(name)
        require(is_admin(request.user), "Only admins may change teams.")
        data = self.body() if partial else {"name": team.name, **self.body()}  # PUT may leave the name out
        team = team_update(actor=self.actor(), team=team, data=data, partial=partial)
        return ok(team=_render(team.name))

    def patch(self, request, name):
        return self._update(request, name, partial=True)

    def put(self, request, name):
        return self._update(request, name, partial=False)

    def delete(self, request, name):
        team = _team_get(name)
        require(is_admin(request.user), "Only admins may delete teams.")
        team_delete(actor=self.actor(), team=team)
        return ok()
