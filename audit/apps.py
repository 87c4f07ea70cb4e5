from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from audit.database_role import app_role_grant_after_migrate, app_role_set

        connection_created.connect(app_role_set, dispatch_uid="audit.app_role_set")
        post_migrate.connect(app_role_grant_after_migrate, sender=self, dispatch_uid="audit.app_role_grant")
