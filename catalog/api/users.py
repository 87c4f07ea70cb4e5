from catalog.access import is_admin
from catalog.services.users import user_get, user_json, user_update, users_json, users_listed
from portal.api.base import ApiView, ok, require


class UserListView(ApiView):
    def get(self, request):
        return ok(users=users_json(users_listed()))


class UserDetailView(ApiView):
    def get(self, request, email):
        return ok(user=user_json(user_get(email)))

    def patch(self, request, email):
        user = user_get(email)
        require(is_admin(request.user), "Only admins may change users' roles and teams.")
        return ok(user=user_json(user_update(actor=self.actor(), user=user, data=self.body())))
