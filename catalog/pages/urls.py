"""Developer-facing pages of the catalog: the blueprint list and the blueprint tables. The entity page
(`/catalog/<blueprint>/<identifier>/`) shows runs and actions too, so it lives with the actions pages
(actions/pages/entity_urls.py): catalog never imports actions."""
from django.urls import path

from catalog.pages import blueprints, integrations, table

urlpatterns: list = [
    path("catalog/", blueprints.blueprint_list, name="catalog"),
    path("catalog/<str:blueprint>/", table.entity_table, name="catalog-table"),
    path("integrations/", integrations.integration_list, name="integrations"),
]
