"""Page route of the entity page (web/action_pages/entity.py): under /catalog/ like the blueprint tables, but served
with the action pages because it shows runs and the actions the user may run. `path:` because entity
identifiers may hold slashes."""
from django.urls import path

from web.action_pages import entity

urlpatterns = [
    path("catalog/<str:blueprint>/<path:identifier>/", entity.entity_detail, name="entity-detail"),
]
