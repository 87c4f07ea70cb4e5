"""Page routes for action forms, runs and the approval queue (views in web/action_pages/{actions,runs,approvals}.py)."""
from django.urls import path

from web.action_pages import actions, approvals, runs

urlpatterns = [
    path("actions/", actions.action_list, name="action-list"),
    path("actions/<str:identifier>/run", actions.action_run, name="action-run"),
    path("actions/<str:identifier>/run/options", actions.action_run_options, name="action-run-options"),
    path("runs/", runs.run_list, name="run-list"),
    path("runs/<str:run_id>/", runs.run_detail, name="run-detail"),
    path("runs/<str:run_id>/live", runs.run_live, name="run-live"),
    path("approvals/", approvals.approval_queue, name="approval-queue"),
    path("approvals/<str:run_id>/decide", approvals.approval_decide, name="approval-decide"),
]
