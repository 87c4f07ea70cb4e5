"""Every server-rendered page: sign-in, the catalog pages, the action pages, the demo Slack page."""
from django.contrib.auth import views as auth_views
from django.urls import include, path

from web import demo_slack

urlpatterns = [
    path("demo/slack/", demo_slack.demo_slack_messages, name="demo-slack"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("web.catalog_pages.urls")),
    path("", include("web.action_pages.urls")),
]
