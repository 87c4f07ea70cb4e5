"""Reads of users for the pages' pickers (an action's `user` inputs)."""
from django.contrib.auth import get_user_model


def active_user_names(*, limit):
    """[(email, "First Last")] of up to `limit` active users with an email, by email."""
    rows = (get_user_model().objects.filter(is_active=True).exclude(email="").order_by("email")
            .values_list("email", "first_name", "last_name")[:limit])
    return [(email, f"{first} {last}".strip()) for email, first, last in rows]
