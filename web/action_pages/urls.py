"""Page routes of actions, runs, environments, locks and deployments, one module per area so each can be read on its own."""
from django.urls import include, path

urlpatterns = [
    path("", include("web.action_pages.runs_urls")),          # action forms, run pages, approval queue
    path("", include("web.action_pages.environments_urls")),  # home, my environments, locks, deployments
    path("", include("web.action_pages.entity_urls")),        # the entity page, /catalog/<blueprint>/<identifier>/
]
