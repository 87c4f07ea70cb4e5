"""Domain errors raised by services; the API renders them in Port's error envelope."""
from dataclasses import dataclass


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


@dataclass(frozen=True)
class FieldError:
    """One thing wrong with an input: `path` says where, as the API's messages name places
    (`schema.properties.replicas.type`, `properties.branch`, `rules[0].value`; "" for the input as a whole)."""

    path: str
    message: str

    def __str__(self):
        return f"{self.path}: {self.message}" if self.path else self.message

    def within(self, prefix):
        """The same error seen from a document that holds this one at `prefix`."""
        if not prefix:
            return self
        joined = prefix if not self.path else f"{prefix}{self.path}" if self.path.startswith("[") else f"{prefix}.{self.path}"
        return FieldError(joined, self.message)


class ValidationFailed(PortalError):
    """Input does not match what the route or the blueprint requires. The errors are data, each a path and a
    message (`errors`); the API's `message` is their text, "path: message; other.path: message", and a form puts
    each one on the field its path names without reading the text.

    `ValidationFailed("is required", path="identifier")` for one error, `ValidationFailed(errors=[...])` for
    several."""

    status = 422
    code = "invalid_request"

    def __init__(self, message=None, *, path="", errors=None, code=None, status=None, details=None):
        self.errors = tuple(errors) if errors is not None else (FieldError(path, message),)
        super().__init__("; ".join(map(str, self.errors)), code=code, status=status, details=details)

    @property
    def path(self):
        """The first error's path (a single error's path)."""
        return self.errors[0].path

    def within(self, prefix):
        """The same failure seen from a document that holds the failing one at `prefix` (a blueprint inside
        a request, an input inside an action)."""
        return type(self)(errors=[error.within(prefix) for error in self.errors], code=self.code,
                          status=self.status, details=self.details)


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
