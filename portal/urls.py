"""The only module that sees every app."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView

from actions import demo_receiver
from actions.api.agent import OrganizationView, WorkflowRunsClaimView
from portal.api.views import AccessTokenView, healthz
from portal.errorpages import api_route_missing

v1 = [
    path("auth/access_token", AccessTokenView.as_view()),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("docs", SpectacularRedocView.as_view(url_name="openapi"), name="api-docs"),
    path("organization", OrganizationView.as_view()),  # execution agents (actions/api/agent.py)
    path("workflows/runs/claim-pending", WorkflowRunsClaimView.as_view()),
    path("", include("actions.api.urls")),
    path("", include("catalog.api.urls")),
    path("", include("audit.api.urls")),
    # Last: what no route above matched answers the 404 envelope, also with DEBUG on (Django's debug 404 page
    # is HTML, and Port's clients decode every answer as JSON).
    re_path(r"", api_route_missing),
]

urlpatterns = [
    path("healthz", healthz),
    path("admin/", admin.site.urls),
    path("v1/", include(v1)),
    path("demo/receiver/<str:kind>", demo_receiver.demo_receiver_webhook),
    path("demo/slack/", demo_receiver.demo_slack_messages, name="demo-slack"),
    path("demo/slack/<str:method>", demo_receiver.demo_slack_api),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The developer-facing pages (templates/ and each app's pages/).
    path("", include("catalog.pages.urls")),
    path("", include("actions.pages.urls")),
]

# Errors outside DRF views: our envelope under /v1, a friendly page elsewhere (portal/errorpages.py).
handler400 = "portal.errorpages.bad_request"
handler403 = "portal.errorpages.permission_denied"
handler404 = "portal.errorpages.page_not_found"
handler500 = "portal.errorpages.server_error"
