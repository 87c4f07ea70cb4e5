from django.db import models


class AuditStatus(models.TextChoices):
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


class AuditAction(models.TextChoices):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


# Verbs, dotted `<app>.<resource>.<past participle>`.
BLUEPRINT_CREATED = "catalog.blueprint.created"
BLUEPRINT_UPDATED = "catalog.blueprint.updated"
BLUEPRINT_DELETED = "catalog.blueprint.deleted"
BLUEPRINT_PERMISSIONS_UPDATED = "catalog.blueprint.permissions_updated"
ENTITY_INDEX_CREATED = "catalog.entity_index.created"  # an indexed property's sort index (catalog/services/entity_indexes.py)
ENTITY_INDEX_DROPPED = "catalog.entity_index.deleted"
ENTITY_CREATED = "catalog.entity.created"
ENTITY_UPDATED = "catalog.entity.updated"
ENTITY_DELETED = "catalog.entity.deleted"
SCORECARD_CREATED = "catalog.scorecard.created"
SCORECARD_UPDATED = "catalog.scorecard.updated"
SCORECARD_DELETED = "catalog.scorecard.deleted"
INITIATIVE_CREATED = "catalog.initiative.created"
INITIATIVE_UPDATED = "catalog.initiative.updated"
INITIATIVE_DELETED = "catalog.initiative.deleted"
TEAM_CREATED = "catalog.team.created"
TEAM_UPDATED = "catalog.team.updated"
TEAM_DELETED = "catalog.team.deleted"
USER_CREATED = "catalog.user.created"
USER_UPDATED = "catalog.user.updated"
API_CLIENT_CREATED = "portal.api_client.created"
API_CLIENT_DEACTIVATED = "portal.api_client.deactivated"
ACTION_CREATED = "actions.action.created"
ACTION_UPDATED = "actions.action.updated"
ACTION_DELETED = "actions.action.deleted"
ACTION_PERMISSIONS_UPDATED = "actions.action.permissions_updated"
RUN_CREATED = "actions.run.created"
RUN_UPDATED = "actions.run.updated"
RUN_REFUSED = "actions.run.refused"
RUN_APPROVAL_DECIDED = "actions.run.approval_decided"
RUN_LOG_ADDED = "actions.run.log_added"
SECRET_CREATED = "actions.secret.created"
SECRET_UPDATED = "actions.secret.updated"
SECRET_DELETED = "actions.secret.deleted"
NOTIFICATION_SETTINGS_UPDATED = "actions.notification_settings.updated"
DEPLOYMENT_REFUSED = "catalog.deployment.refused"
SAVED_VIEW_SAVED = "catalog.saved_view.saved"
SAVED_VIEW_DELETED = "catalog.saved_view.deleted"
INTEGRATION_CREATED = "catalog.integration.created"
INTEGRATION_UPDATED = "catalog.integration.updated"
INTEGRATION_CONFIG_UPDATED = "catalog.integration.config_updated"
INTEGRATION_RESYNC_STATE_UPDATED = "catalog.integration.resync_state_updated"
INTEGRATION_RESYNC_REQUESTED = "catalog.integration.resync_requested"
