from django.urls import path

from catalog.api import backstage, blueprints, entities
from catalog.api import datasources, deployments
from catalog.api import initiatives, integrations
from catalog.api import scorecards, search
from catalog.api import teams, users

# What is called most is matched first (web/urls.py): Django walks the patterns in order, and walking every other /v1
# route cost a lock check a fifth of its time and a GET by identifier a tenth. CI's calls on every pipeline run:
ci_urlpatterns = [
    path("locks/<str:service>/<str:environment>", deployments.LockView.as_view()),
    path("deployments", deployments.DeploymentListView.as_view()),
]
# then the entity routes (reads by identifier, search pages, ingestion), whose order among themselves matters: the
# identifier is a path, so `bulk` and `search` come before it (and actions' `.../ttl/extend` before them all).
entity_urlpatterns = [
    path("blueprints/<str:blueprint>/entities", entities.EntityListView.as_view()),
    path("blueprints/<str:blueprint>/entities/bulk", entities.EntityBulkView.as_view()),
    path("blueprints/<str:blueprint>/entities/search", search.BlueprintEntitySearchView.as_view()),
    path("blueprints/<str:blueprint>/entities/<path:identifier>", entities.EntityDetailView.as_view()),
]

urlpatterns = [
    path("blueprints", blueprints.BlueprintListView.as_view()),
    path("blueprints/entities/datasource-entities", datasources.DatasourceEntitiesView.as_view()),
    path("blueprints/<str:identifier>", blueprints.BlueprintDetailView.as_view()),
    path("blueprints/<str:identifier>/entities-count", blueprints.BlueprintEntitiesCountView.as_view()),
    path("blueprints/<str:identifier>/permissions", blueprints.BlueprintPermissionsView.as_view()),
    path("blueprints/<str:blueprint>/scorecards", scorecards.BlueprintScorecardListView.as_view()),
    path("blueprints/<str:blueprint>/scorecards/<str:identifier>", scorecards.BlueprintScorecardDetailView.as_view()),
    path("scorecards", scorecards.ScorecardListView.as_view()),
    path("initiatives", initiatives.InitiativeListView.as_view()),
    path("initiatives/<str:identifier>", initiatives.InitiativeDetailView.as_view()),
    path("blueprints/<str:blueprint>/bulk/entities/delete", entities.EntityBulkDeleteView.as_view()),
    path("entities/search", search.EntitySearchView.as_view()),
    path("backstage/locations", backstage.BackstageLocationListView.as_view()),
    path("backstage/locations/<str:identifier>", backstage.BackstageLocationDetailView.as_view()),
    path("backstage/locations/<str:identifier>/refresh", backstage.BackstageLocationRefreshView.as_view()),
    path("teams", teams.TeamListView.as_view()),
    path("teams/<path:name>", teams.TeamDetailView.as_view()),
    path("users", users.UserListView.as_view()),
    path("users/<str:email>", users.UserDetailView.as_view()),
    path("running-services", deployments.RunningServiceListView.as_view()),
    path("dora", deployments.DoraView.as_view()),
    path("integration", integrations.IntegrationListView.as_view()),
    path("integration/provision-enabled", integrations.IntegrationProvisionEnabledView.as_view()),
    path("integration/<str:identifier>", integrations.IntegrationDetailView.as_view()),
    path("integration/<str:identifier>/config", integrations.IntegrationConfigView.as_view()),
    path("integration/<str:identifier>/resync-state", integrations.IntegrationResyncStateView.as_view()),
    path("integration/<str:identifier>/resync-request", integrations.IntegrationResyncRequestView.as_view()),
    path("integration/<str:identifier>/logs", integrations.IntegrationLogsView.as_view()),
    path("integration/<str:identifier>/metrics/syncMetrics", integrations.IntegrationSyncMetricsView.as_view()),
    path("integration/<str:identifier>/metrics/heartbeat", integrations.IntegrationHeartbeatView.as_view()),
    path("integration/<str:identifier>/metrics/syncMetrics/resync/<str:event_id>/kind/<path:kind>",
         integrations.IntegrationKindMetricsView.as_view()),
    path("integration/<str:identifier>/kinds/<path:kind>/examples", integrations.IntegrationKindExamplesView.as_view()),
]
