"""Page routes: home, my environments, locks, deployments (web/action_pages/{home,environments,locks,deployments}.py)."""
from django.urls import path

from web.action_pages import deployments, environments, home, locks

urlpatterns = [
    path("", home.home_page, name="home"),
    path("environments/", environments.environments_page, name="environments"),
    path("environments/extend", environments.environment_extend, name="environment-extend"),
    path("environments/terminate", environments.environment_terminate, name="environment-terminate"),
    path("locks/", locks.locks_page, name="locks"),
    path("deployments/", deployments.deployments_page, name="deployments"),
    path("deployments/services/<path:service>/", deployments.deployments_page, name="deployments-service"),
    path("deployments/environments/<path:environment>/", deployments.deployments_page, name="deployments-environment"),
]
