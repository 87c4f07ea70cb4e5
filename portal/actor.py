"""Who performs a change, and through which door. Every service takes one explicitly."""
from dataclasses import dataclass

from audit.choices import AuditOrigin


@dataclass(frozen=True)
class Actor:
    user: object | None = None  # auth.User; None for the system itself
    origin: str = AuditOrigin.SYSTEM
    client_id: str = ""

    @classmethod
    def system(cls):
        return cls(user=None, origin=AuditOrigin.SYSTEM)

    @classmethod
    def from_request(cls, request, origin=AuditOrigin.API):
        user = request.user if request.user.is_authenticated else None
        auth = getattr(request, "auth", None)
        client_id = auth.get("clientId", "") if isinstance(auth, dict) else ""
        return cls(user=user, origin=origin, client_id=client_id)

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
