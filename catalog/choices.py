from django.db import models

from portal.roles import ADMINS_TEAM  # noqa: F401 (re-exported: the catalog's Admin role)

PROPERTY_TYPES = ("string", "number", "boolean", "object", "array")
STRING_FORMATS = (
    "date-time", "url", "email", "ipv4", "ipv6", "markdown", "yaml", "user", "team", "timer", "proto", "labeled-url",
)
SPEC_KINDS = ("open-api", "async-api", "embedded-url")
META_PROPERTIES = (
    "$identifier", "$title", "$team", "$icon", "$createdAt", "$updatedAt", "$createdBy", "$updatedBy", "$blueprint",
)
OWNERSHIP_TYPES = ("Direct", "Inherited")
AGGREGATION_FUNCTIONS = ("count", "sum", "average", "min", "max", "median")

# Identifier grammar from PORT_API.md (letters are any Unicode letter, \p{L}).
BLUEPRINT_IDENTIFIER_EXTRA_CHARS = frozenset("0123456789@_.+:\\/-")
ENTITY_IDENTIFIER_EXTRA_CHARS = BLUEPRINT_IDENTIFIER_EXTRA_CHARS | {"="}
KEY_RE = r"[A-Za-z0-9@_=\-]+"  # a whole key: use with re.fullmatch (`$` also matches before a final "\n")
BLUEPRINT_IDENTIFIER_MAX = 100
ENTITY_IDENTIFIER_MAX = 1000
KEY_MAX = 100

# Blueprint entity permission verbs (Port's names) and the guardian codenames that hold them.
ENTITY_PERMISSION_VERBS = ("read", "register", "update", "unregister")
ENTITY_PERMISSION_CODENAMES = {
    "read": "read_entities",
    "register": "register_entities",
    "update": "update_entities",
    "unregister": "unregister_entities",
}
MODERATE_CODENAME = "moderate_blueprint"
ROLE_ADMIN = "Admin"
ROLE_MEMBER = "Member"
MEMBERS_GROUP = "Members"  # the guardian group that holds grants to the Member role (every signed-in user)


class ResyncStatus(models.TextChoices):
    """An integration's resync state (Ocean's IntegrationStateStatus)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    ABORTED = "aborted"


RESYNC_FINAL_STATUSES = frozenset({ResyncStatus.COMPLETED, ResyncStatus.FAILED, ResyncStatus.ABORTED})
INTEGRATION_LOG_LINES_KEPT = 500
INTEGRATION_KIND_EXAMPLES_KEPT = 10


class BackstageLocationType(models.TextChoices):
    FILE = "file"
    URL = "url"
    GITHUB = "github"  # a GitHub organization: every repository's catalog_path
