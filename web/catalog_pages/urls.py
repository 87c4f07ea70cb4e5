"""Developer-facing pages of the catalog: the blueprint list and the blueprint tables. The entity page
(`/catalog/<blueprint>/<identifier>/`) shows runs and actions too, so it lives with the action pages
(web/action_pages/entity_urls.py)."""
from django.urls import path

from web.catalog_pages import backstage, blueprints, initiatives, integrations, scorecards, table, teams

urlpatterns: list = [
    path("catalog/", blueprints.blueprint_list, name="catalog"),
    path("catalog/<str:blueprint>/", table.entity_table, name="catalog-table"),
    path("integrations/", integrations.integration_list, name="integrations"),
    path("backstage/", backstage.backstage_location_list, name="backstage-locations"),
    path("backstage/<str:identifier>/", backstage.backstage_location_detail, name="backstage-location"),
    path("scorecards/", scorecards.scorecard_list, name="scorecards"),
    path("initiatives/", initiatives.initiative_list, name="initiatives"),
    path("initiatives/<str:identifier>/", initiatives.initiative_detail, name="initiative"),
    path("scorecards/<str:blueprint>/<str:scorecard>/", scorecards.scorecard_dashboard, name="scorecard-dashboard"),
    path("teams/", teams.team_list, name="teams"),
    path("teams/<path:team>/", teams.team_detail, name="team-detail"),  # path: team names may hold slashes
]
