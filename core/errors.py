"""The small error hierarchy every Tubeway process shares.

Errors that cross the broker wire carry a ``code`` (one of :data:`CODES`) so the
client can raise the same class on its side; HTTP adapters map codes to their own
status and body format.
"""


class TubewayError(Exception):
    """Base class of every error Tubeway raises on purpose."""

    code = "error"

    def __init__(self, message="", **details):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_wire(self):
        """The error as the broker sends it in a reply."""
        return {"code": self.code, "message": self.message, **self.details}


class ConfigError(TubewayError):
    """A setting has an invalid value; the process refuses to start."""

    code = "config"


class ValidationError(TubewayError):
    """Input a client sent is invalid; ``field`` names what is wrong (and ``index`` in a batch)."""

    code = "invalid"

    def __init__(self, message, field=None, index=None):
        details = {"field": field}
        if index is not None:
            details["index"] = index
        super().__init__(message, **details)
        self.field = field
        self.index = index


class UnknownKind(ValidationError):
    """No installed plugin runs the job kind a client asked for."""

    code = "unknown_kind"


class JobNotFound(TubewayError):
    """No job has the id asked for (or it expired)."""

    code = "not_found"


class JobConflict(TubewayError):
    """The job is not in a state that allows the change asked for."""

    code = "conflict"


class LockRefused(TubewayError):
    """A lock token that is not the one of the attempt holding the job now (or the job is not running)."""

    code = "lock_refused"


class BrokerUnavailable(TubewayError):
    """The broker did not answer in time."""

    code = "unavailable"


class ProtocolError(TubewayError):
    """A message on the broker socket does not follow the wire protocol."""

    code = "protocol"


class JobTimeout(TubewayError):
    """A job ran past its timeout."""

    code = "timeout"


CODES = {
    cls.code: cls
    for cls in (
        TubewayError,
        ConfigError,
        ValidationError,
        UnknownKind,
        JobNotFound,
        JobConflict,
        LockRefused,
        BrokerUnavailable,
        ProtocolError,
        JobTimeout,
    )
}


def from_wire(error):
    """Rebuild the exception a broker reply describes."""
    error = dict(error)
    cls = CODES.get(error.pop("code", "error"), TubewayError)
    message = error.pop("message", "")
    if issubclass(cls, ValidationError):
        return cls(message, field=error.get("field"), index=error.get("index"))
    return cls(message, **error)
