"""/v1/actions and /v1/actions/{id}[/permissions]: Port's action CRUD; admins write, users see what they may run."""
from actions.access import actions_visible_to
from actions.choices import Operation, TriggerType
from actions.models import Action
from actions.serializers import action_json
from actions.services.actions import (action_create, action_delete, action_permissions_json, action_permissions_update,
                                      action_update)
from catalog.access import is_admin
from portal.api.base import ApiView, ok, require
from portal.errors import NotFound, ValidationFailed

FILTERS = {"blueprint_identifier": ("blueprint_identifier", None), "operation": ("operation", Operation.values),
           "trigger_type": ("trigger_type", TriggerType.values)}


def action_get_visible(identifier, user):
    """The action if `user` may see it (admins: any); otherwise 404, so hidden actions do not show."""
    action = actions_visible_to(user, Action.objects.filter(identifier=identifier)).first()
    if action is None:
        raise NotFound(f"Action {identifier!r} was not found.")
    return action


class ActionListView(ApiView):
    def get(self, request):
        queryset = Action.objects.order_by("identifier")
        for param, (field, allowed) in FILTERS.items():
            value = request.query_params.get(param)
            if not value:  # an empty value is no filter, as on every other route
                continue
            if allowed is not None and value not in allowed:
                raise ValidationFailed(f"must be one of {list(allowed)}, got {value!r}", path=param)
            queryset = queryset.filter(**{field: value})
        return ok(actions=[action_json(action) for action in actions_visible_to(request.user, queryset)])

    def post(self, request):
        require(is_admin(request.user), "Only admins may create actions.")
        return ok(status=201, action=action_json(action_create(actor=self.actor(), data=self.body())))


class ActionDetailView(ApiView):
    def get(self, request, identifier):
        return ok(action=action_json(action_get_visible(identifier, request.user)))

    def put(self, request, identifier):
        action = action_get_visible(identifier, request.user)
        require(is_admin(request.user), "Only admins may change actions.")
        return ok(action=action_json(action_update(actor=self.actor(), action=action, data=self.body())))

    def delete(self, request, identifier):
        action = action_get_visible(identifier, request.user)
        require(is_admin(request.user), "Only admins may delete actions.")
        action_delete(actor=self.actor(), action=action)
        return ok()


class ActionPermissionsView(ApiView):
    def get(self, request, identifier):
        return ok(permissions=action_permissions_json(action_get_visible(identifier, request.user)))

    def patch(self, request, identifier):
        action = action_get_visible(identifier, request.user)
        require(is_admin(request.user), "Only admins may change an action's permissions.")
        return ok(permissions=action_permissions_update(actor=self.actor(), action=action, data=self.body()))
