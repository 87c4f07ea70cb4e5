"""Sign-in: the first page a new user meets."""
import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_wrong_password_is_refused_and_the_right_one_signs_in(live_server, page, sign_in, screenshot):
    UserFactory(email="dev@example.com")
    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url  # every page asks for a sign-in first
    page.get_by_label("Email or username").fill("dev@example.com")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").is_visible()
    screenshot(page, "sign-in-refused")

    sign_in(page, "dev@example.com")
    assert page.get_by_role("navigation", name="Main").is_visible()
    screenshot(page, "signed-in")
