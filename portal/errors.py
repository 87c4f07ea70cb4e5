"""Domain errors raised by services; the API renders them in Port's error envelope.

An error's place is data, not text: each error holds one or more `FieldError(path, message)`, and the API's
`message` is their text joined ("path: message; other.path: message"). A form puts each on the field its path
names (`FieldError.parts`) without reading the text."""
import re
from dataclasses import dataclass

# One step of a path as messages write it: `.key` (or a leading `key`) or `[index]`.
_PATH_STEP_RE = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True)
class FieldError:
    """One thing wrong with an input: `path` says where, as the API's messages name places
    (`schema.properties.replicas.type`, `properties.branch`, `rules[0].value`; "" for the input as a whole)."""

    path: str
    message: str

    def __str__(self):
        return f"{self.path}: {self.message}" if self.path else self.message

    @property
    def parts(self):
        """The path as its keys and indexes: `properties.tags[1]` → ("properties", "tags", 1); () for ""."""
        return tuple(int(index) if index else key for key, index in _PATH_STEP_RE.findall(self.path))

    def within(self, prefix):
        """The same error seen from a document that holds this one at `prefix`."""
        if not prefix:
            return self
        joined = prefix if not self.path else f"{prefix}{self.path}" if self.path.startswith("[") else f"{prefix}.{self.path}"
        return FieldError(joined, self.message)


class PortalError(Exception):
    """A refusal the API renders with `status` and `code`. `PortalError("is required", path="identifier")` for
    one error at a place, `PortalError(errors=[FieldError(...), ...])` for several; a FieldError may stand for
    the message (then `path` is the place that holds it)."""

    status = 400
    code = "invalid_request"

    def __init__(self, message=None, *, path="", errors=None, code=None, status=None, details=None):
        if errors is not None:
            self.errors = tuple(errors)
        elif isinstance(message, FieldError):
            self.errors = (message.within(path),)
        else:
            self.errors = (FieldError(path, message),)
        self.message = "; ".join(map(str, self.errors))
        super().__init__(self.message)
        if code:
            self.code = code
        if status:
            self.status = status
        self.details = details or {}

    @property
    def path(self):
        """The first error's path (a single error's path)."""
        return self.errors[0].path if self.errors else ""

    def within(self, prefix):
        """The same failure seen from a document that holds the failing one at `prefix` (a blueprint inside
        a request, an input inside an action)."""
        return type(self)(errors=[error.within(prefix) for error in self.errors], code=self.code,
                          status=self.status, details=self.details)


class ValidationFailed(PortalError):
    """Input does not match what the route or the blueprint requires: 422, each error naming the path at fault
    (`ValidationFailed("is required", path="identifier")`, `ValidationFailed(errors=[...])`)."""

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
