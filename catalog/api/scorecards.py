from catalog.access import can_moderate
from catalog.models import Blueprint
from catalog.selectors.blueprints import blueprint_get
from catalog.selectors.scorecards import scorecard_find, scorecard_json
from catalog.services.scorecards import scorecard_create, scorecard_delete, scorecard_update, scorecards_replace
from portal.api.base import ApiView, ok, require


def _moderated(request, identifier):
    blueprint = blueprint_get(identifier)
    require(can_moderate(request.user, blueprint),
            f"Only admins and moderators of {identifier!r} may change its scorecards.")
    return blueprint


class ScorecardListView(ApiView):
    """GET /v1/scorecards: every blueprint's scorecards."""

    def get(self, request):
        return ok(scorecards=[scorecard_json(bp, s) for bp in Blueprint.objects.exclude(scorecards=[])
                              for s in bp.scorecards])


class BlueprintScorecardListView(ApiView):
    def get(self, request, blueprint):
        bp = blueprint_get(blueprint)
        return ok(scorecards=[scorecard_json(bp, s) for s in bp.scorecards])

    def post(self, request, blueprint):
        bp = _moderated(request, blueprint)
        return ok(status=201, scorecard=scorecard_json(bp, scorecard_create(actor=self.actor(), blueprint=bp,
                                                                            data=self.body())))

    def put(self, request, blueprint):
        bp = _moderated(request, blueprint)
        return ok(scorecards=[scorecard_json(bp, s) for s in scorecards_replace(actor=self.actor(), blueprint=bp,
                                                                                data=self.request.data)])


class BlueprintScorecardDetailView(ApiView):
    def get(self, request, blueprint, identifier):
        bp = blueprint_get(blueprint)
        return ok(scorecard=scorecard_json(bp, scorecard_find(bp, identifier)))

    def put(self, request, blueprint, identifier):
        bp = _moderated(request, blueprint)
        return ok(scorecard=scorecard_json(bp, scorecard_update(actor=self.actor(), blueprint=bp, identifier=identifier,
                                                                data=self.body())))

    def delete(self, request, blueprint, identifier):
        bp = _moderated(request, blueprint)
        scorecard_delete(actor=self.actor(), blueprint=bp, identifier=identifier)
        return ok()
