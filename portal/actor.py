"""Who performs a change, and through which door. Every service takes one explicitly."""
import re
from dataclasses import dataclass

from django.db import models


class AuditOrigin(models.TextChoices):
    """The door an actor comes through, recorded with every audit event."""
    API = "API"
    UI = "UI"
    ADMIN = "ADMIN"
    SYSTEM = "SYSTEM"


# An Ocean integration names itself in its User-Agent: port-ocean/<type>/<version>/<installationId>, with
# /<exporter|...> on its entity writes. That text is the datasource of what it writes (Port's `$datasource`);
# other writers have none.
OCEAN_USER_AGENT = re.compile(r"port-ocean/[^/\s]+/[^/\s]+/[^/\s]+(/[A-Za-z_-]+)?")
DATASOURCE_MAX = 300


def request_datasource(request):
    """The datasource of what this request writes: an Ocean integration's User-Agent, else ''."""
    agent = (request.headers.get("User-Agent") or "").strip()
    return agent if len(agent) <= DATASOURCE_MAX and OCEAN_USER_AGENT.fullmatch(agent) else ""


@dataclass(frozen=True)
class Actor:
    user: object | None = None  # auth.User; None for the system itself
    origin: str = AuditOrigin.SYSTEM
    client_id: str = ""
    datasource: str = ""  # an Ocean integration's User-Agent (see request_datasource), else ''

    @classmethod
    def system(cls):
        return cls(user=None, origin=AuditOrigin.SYSTEM)

    @classmethod
    def from_request(cls, request, origin=AuditOrigin.API):
        user = request.user if request.user.is_authenticated else None
        auth = getattr(request, "auth", None)
        client_id = auth.get("clientId", "") if isinstance(auth, dict) else ""
        return cls(user=user, origin=origin, client_id=client_id, datasource=request_datasource(request))

    @property
    def label(self) -> str:
        """What the catalog records as createdBy/updatedBy."""
        if self.user is not None:
            return self.user.email or self.user.get_username()
        return self.client_id or "system"

    @property
    def kind(self) -> str:
        if self.client_id:
            return "client"
        return "user" if self.user is not None else "system"
