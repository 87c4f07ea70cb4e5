from django.db import models


class AuditOrigin(models.TextChoices):
    API = "API"
    UI = "UI"
    ADMIN = "ADMIN"
    SYSTEM = "SYSTEM"


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
ENTITY_CREATED = "catalog.entity.created"
ENTITY_UPDATED = "catalog.entity.updated"
ENTITY_DELETED = "catalog.entity.deleted"
TEAM_CREATED = "catalog.team.created"
TEAM_UPDATED = "catalog.team.updated"
TEAM_DELETED = "catalog.team.deleted"
USER_CREATED = "catalog.user.created"
USER_UPDATED = "catalog.user.updated"
API_CLIENT_CREATED = "portal.api_client.created"
API_CLIENT_DEACTIVATED = "portal.api_client.deactivated"
