from django.db import models


class Operation(models.TextChoices):
    CREATE = "CREATE"
    DAY2 = "DAY-2"
    DELETE = "DELETE"


class TriggerType(models.TextChoices):
    SELF_SERVICE = "self-service"
    AUTOMATION = "automation"


class RunStatus(models.TextChoices):
    WAITING_FOR_APPROVAL = "WAITING_FOR_APPROVAL"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    DECLINED = "DECLINED"


class RunOrigin(models.TextChoices):
    UI = "UI"
    API = "API"
    AUTOMATION = "AUTOMATION"


class Decision(models.TextChoices):
    APPROVE = "APPROVE"
    DECLINE = "DECLINE"


INVOCATION_TYPES = ("WEBHOOK", "GITHUB", "GITLAB", "UPSERT_ENTITY", "SLACK", "EXTEND_TTL", "KAFKA")  # EXTEND_TTL: ours
DEFAULT_RUN_TIMEOUT_SECONDS = 3600
