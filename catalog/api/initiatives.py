"""/v1/initiatives: goals over scorecards (catalog/initiatives.py), ours. Anyone signed in reads them, with progress
counted over the entities they may read; admins and moderators of the initiative's blueprint change them."""
from catalog.access import can_moderate
from catalog.selectors.blueprints import blueprint_get
from catalog.selectors.initiatives import (NO_TEAM, initiative_failing_visible_to, initiative_get, initiative_json,
                                           initiative_progress_visible_to, initiatives_all)
from catalog.services.initiatives import initiative_create, initiative_delete, initiative_update
from portal.api.base import ApiView, ok, query_int, require
from portal.errors import NotFound, ValidationFailed

FAILING_LIMIT_DEFAULT, FAILING_LIMIT_MAX = 100, 1000


def _may_change(request, blueprint_identifier):
    """Refuse unless the caller moderates the blueprint; a blueprint that does not exist is the service's to name
    (`blueprint: ... does not exist`, 422)."""
    try:
        blueprint = blueprint_get(blueprint_identifier)
    except NotFound:
        return
    require(can_moderate(request.user, blueprint),
            f"Only admins and moderators of {blueprint_identifier!r} may change its initiatives.")


def _with_progress(user, initiative):
    return {**initiative_json(initiative), "progress": initiative_progress_visible_to(user, initiative).json()}


class InitiativeListView(ApiView):
    def get(self, request):
        return ok(initiatives=[_with_progress(request.user, i) for i in initiatives_all()])

    def post(self, request):
        data = self.body()
        if isinstance(data.get("blueprint"), str):  # else the service names the field
            _may_change(request, data["blueprint"])
        initiative = initiative_create(actor=self.actor(), data=data)
        return ok(status=201, initiative=_with_progress(request.user, initiative))


class InitiativeDetailView(ApiView):
    def get(self, request, identifier):
        """The initiative with its progress, and the entities failing it (`team` narrows to one owning team's,
        `team=` to those no team owns; `limit`, 100 by default) with the rules each must fix."""
        initiative = initiative_get(identifier)
        team = request.query_params.get("team")
        if team is not None and len(team) > 100:
            raise ValidationFailed("must be a team name of at most 100 characters", path="team")
        failing, total = initiative_failing_visible_to(
            request.user, initiative, team=NO_TEAM if team == "" else team,
            limit=query_int(request, "limit", FAILING_LIMIT_DEFAULT, minimum=1, maximum=FAILING_LIMIT_MAX))
        return ok(initiative=_with_progress(request.user, initiative), failing=failing, failingTotal=total)

    def put(self, request, identifier):
        initiative = initiative_get(identifier)
        _may_change(request, initiative.blueprint.identifier)
        data = self.body()
        if isinstance(data.get("blueprint"), str) and data["blueprint"] != initiative.blueprint.identifier:
            _may_change(request, data["blueprint"])
        initiative = initiative_update(actor=self.actor(), initiative=initiative, data=data)
        return ok(initiative=_with_progress(request.user, initiative))

    def delete(self, request, identifier):
        initiative = initiative_get(identifier)
        _may_change(request, initiative.blueprint.identifier)
        initiative_delete(actor=self.actor(), initiative=initiative)
        return ok()
