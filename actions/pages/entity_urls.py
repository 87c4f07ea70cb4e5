"""Page route of the entity page (actions/pages/entity.py): under /catalog/ like the blueprint tables, but served
by the actions app because it shows runs and the actions the user may run. `path:` because entity
identifiers may hold slashes."""
from django.urls import path

from actions.pages import entity

urlpatterns = [
    path("catalog/<str:blueprint>/<path:identifier>/", entity.entity_detail, name="entity-detail"),
]
