"""Every /v1 route of the actions app (included by web/urls.py)."""
from django.urls import path

from actions.api import actions, agent, runs, ttl

urlpatterns = [
    # runs and approvals routes: actions/api/runs.py
    # (they must come before `actions/<identifier>`, which would otherwise take `actions/runs`)
    path("actions/runs", runs.RunListView.as_view()),
    # execution agent routes: actions/api/agent.py (before `actions/runs/<run_id>`)
    path("actions/runs/claim-pending", agent.RunsClaimView.as_view()),
    path("actions/runs/ack", agent.RunsAckView.as_view()),
    path("actions/runs/<str:run_id>/response", agent.RunResponseView.as_view()),
    path("actions/runs/<str:run_id>", runs.RunDetailView.as_view()),
    path("actions/runs/<str:run_id>/logs", runs.RunLogsView.as_view()),
    path("actions/runs/<str:run_id>/approval", runs.RunApprovalView.as_view()),
    path("actions/runs/<str:run_id>/approvers", runs.RunApproversView.as_view()),
    path("approvals", runs.ApprovalQueueView.as_view()),
    path("actions/<str:identifier>/runs", runs.ActionRunsView.as_view()),
    path("actions", actions.ActionListView.as_view()),
    path("actions/<str:identifier>", actions.ActionDetailView.as_view()),
    path("actions/<str:identifier>/permissions", actions.ActionPermissionsView.as_view()),
]

# Ours: the built-in "Extend TTL" operation (actions/api/ttl.py), under an entity's path: web/urls.py matches it
# before the catalog's entity routes, whose identifier (a path) would take it.
entity_ttl_urlpatterns = [
    path("blueprints/<str:blueprint>/entities/<path:identifier>/ttl/extend", ttl.EntityTtlExtendView.as_view()),
]
