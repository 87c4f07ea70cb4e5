"""Page routes of the actions app, one module per area so each can be read on its own."""
from django.urls import include, path

urlpatterns = [
    path("", include("actions.pages.runs_urls")),          # action forms, run pages, approval queue
    path("", include("actions.pages.environments_urls")),  # home, my environments, locks, deployments
    path("", include("actions.pages.entity_urls")),        # the entity page, /catalog/<blueprint>/<identifier>/
]
