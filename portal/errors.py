"""Domain errors raised by services; the API renders them in Port's error envelope."""


class PortalError(Exception):
    status = 400
    code = "invalid_request"

    def __init__(self, message, *, code=None, status=None, details=None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.details = details or {}


class ValidationFailed(PortalError):
    """Input does not match what the route or the blueprint requires; `message` names the JSON path."""

    status = 422
    code = "invalid_request"


class NotFound(PortalError):
    status = 404
    code = "not_found"


class Conflict(PortalError):
    status = 409
    code = "conflict"


class Forbidden(PortalError):
    status = 403
    code = "forbidden"


class Busy(PortalError):
    """A write lost to concurrent writers (deadlock or serialization failure) on every attempt: 503 with
    Retry-After, so a client tries again shortly."""

    status = 503
    code = "busy"
    retry_after_seconds = 1
