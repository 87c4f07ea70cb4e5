"""The root URLconf (ROOT_URLCONF): the only module that sees every app's routes."""
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView

from actions import demo_receiver
from actions.api.agent import OrganizationView, WorkflowRunsClaimView
from actions.api.urls import entity_ttl_urlpatterns
from audit.api.views import AuditLogView
from catalog.api.urls import ci_urlpatterns, entity_urlpatterns
from catalog.selectors.audit_events import audit_events_visible_to
from portal.api.views import AccessTokenView, api_route_missing, healthz

v1 = [
    # the most called first (catalog/api/urls.py)
    path("", include(ci_urlpatterns)),
    path("", include(entity_ttl_urlpatterns)),
    path("", include(entity_urlpatterns)),
    path("auth/access_token", AccessTokenView.as_view()),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("docs", SpectacularRedocView.as_view(url_name="openapi"), name="api-docs"),
    path("organization", OrganizationView.as_view()),  # execution agents (actions/api/agent.py)
    path("workflows/runs/claim-pending", WorkflowRunsClaimView.as_view()),
    path("", include("actions.api.urls")),
    path("", include("catalog.api.urls")),
    path("audit-log", AuditLogView.as_view(events_visible_to=audit_events_visible_to)),
    # Last: what no route above matched answers the 404 envelope, also with DEBUG on (Django's debug 404 page
    # is HTML, and Port's clients decode every answer as JSON).
    re_path(r"", api_route_missing),
]

urlpatterns = [
    path("healthz", healthz),
    path("admin/", admin.site.urls),
    path("v1/", include(v1)),
    path("demo/receiver/<str:kind>", demo_receiver.demo_receiver_webhook),
    path("demo/slack/<str:method>", demo_receiver.demo_slack_api),
    # Every server-rendered page (web/): sign-in, the catalog and action pages, the demo Slack page.
    path("", include("web.page_urls")),
]

# Errors outside DRF views: our envelope under /v1, a friendly page elsewhere (web/errorpages.py).
handler400 = "web.errorpages.bad_request"
handler403 = "web.errorpages.permission_denied"
handler404 = "web.errorpages.page_not_found"
handler500 = "web.errorpages.server_error"
