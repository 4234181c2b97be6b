"""Client commands on queue endpoints: ENDPOINT_SET, ENDPOINT_LIST, ENDPOINT_DELETE (see :mod:`.endpoints`)."""
from tubeway.broker.endpoints import check_endpoint
from tubeway.core import protocol as p
from tubeway.core.errors import ValidationError
from tubeway.core.job import storable


def _name(body, field, required=True):
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or not storable(value):
        raise ValidationError(f"'{field}' must be a non-empty string", field)
    return value


class EndpointCommands:
    """Handlers of the endpoint commands, bound to the broker's :class:`~.endpoints.Endpoints`."""

    def __init__(self, endpoints):
        self.endpoints = endpoints
        self.handlers = {p.ENDPOINT_SET: self.set, p.ENDPOINT_LIST: self.list, p.ENDPOINT_DELETE: self.delete}

    def set(self, identity, request_id, body):
        """Register or replace a queue's endpoint."""
        return self.endpoints.set(check_endpoint(body))

    def list(self, identity, request_id, body):
        """Every endpoint, of one namespace when asked."""
        return {"endpoints": self.endpoints.list(_name(body, "namespace", required=False))}

    def delete(self, identity, request_id, body):
        """Remove a queue's endpoint."""
        return self.endpoints.delete(_name(body, "namespace"), _name(body, "queue"))
