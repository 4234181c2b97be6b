"""HTTP endpoints that process queues: stored registrations, and how many of a queue's jobs may run at once.

An endpoint belongs to ``(namespace, queue)``: ``url``, ``method``, ``headers``,
``timeout`` (seconds) and ``concurrency``. Jobs of the kind ``push`` in that queue are
sent to it by worker processes (the endpoint rides with each dispatched job); the
broker hands out at most ``concurrency`` of them at once across every worker process,
and none while the queue has no endpoint: they wait, and flow once one is registered.
Registrations are rows of ``tubeway_endpoint``: they survive restarts, and every
dialect, the native API and the CLI see the same ones.
"""
import orjson

from tubeway.broker.store.models import Endpoint
from tubeway.core.errors import JobNotFound, ValidationError
from tubeway.core.job import MAX_NAME, http_url_host, storable

PUSH_KIND = "push"
METHODS = ("POST", "PUT", "PATCH")
MAX_CONCURRENCY = 10_000
MAX_TIMEOUT = 24 * 3600.0


def check_endpoint(body):
    """The endpoint a SET_ENDPOINT body describes, checked (ValidationError naming the field)."""
    for field in ("namespace", "queue"):
        value = body.get(field)
        if not isinstance(value, str) or not value or len(value) > MAX_NAME or not storable(value):
            raise ValidationError(f"'{field}' must be a non-empty string", field)
    if http_url_host(body.get("url")) is None:
        raise ValidationError("'url' must be an http(s) URL", "url")
    method = body.get("method") or "POST"
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise ValidationError(f"'method' must be one of {', '.join(METHODS)}", "method")
    headers = body.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) and storable(k + v)
                                                for k, v in headers.items()):
        raise ValidationError("'headers' must map names to strings", "headers")
    timeout, concurrency = body.get("timeout", 3.0), body.get("concurrency", 1)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT:
        raise ValidationError(f"'timeout' must be seconds in (0, {MAX_TIMEOUT:g}]", "timeout")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValidationError(f"'concurrency' must be an integer from 1 to {MAX_CONCURRENCY}", "concurrency")
    return {"namespace": body["namespace"], "queue": body["queue"], "url": body["url"], "method": method.upper(),
            "headers": headers, "timeout": float(timeout), "concurrency": concurrency}


class Endpoints:
    """The registered endpoints (read from storage at start) and the ``push`` jobs running per queue."""

    def __init__(self, clock):
        self.clock = clock
        self.by_queue = {}
        self.running = {}

    def load(self):
        """Read every registration (at start)."""
        for row in Endpoint.select().dicts():
            row["headers"] = orjson.loads(row["headers"] or "{}")
            self.by_queue[(row["namespace"], row["queue"])] = _public(row)

    def set(self, endpoint):
        """Store (or replace) the endpoint of a queue; returns it."""
        now = self.clock()
        row = dict(endpoint, headers=orjson.dumps(endpoint["headers"]).decode(), updated_at=now)
        Endpoint.insert(row).on_conflict(conflict_target=[Endpoint.namespace, Endpoint.queue],
                                         update={k: row[k] for k in row if k not in ("namespace", "queue")}).execute()
        self.by_queue[(endpoint["namespace"], endpoint["queue"])] = dict(endpoint, updated_at=now)
        return self.by_queue[(endpoint["namespace"], endpoint["queue"])]

    def delete(self, namespace, queue):
        """Remove a queue's endpoint; returns it (JobNotFound when it has none)."""
        endpoint = self.by_queue.pop((namespace, queue), None)
        if endpoint is None:
            raise JobNotFound(f"no endpoint is registered for queue '{queue}'")
        Endpoint.delete().where((Endpoint.namespace == namespace) & (Endpoint.queue == queue)).execute()
        return endpoint

    def list(self, namespace=None):
        """Every endpoint (of ``namespace``, when given), by queue name."""
        return [e for (ns, _), e in sorted(self.by_queue.items()) if namespace is None or ns == namespace]

    def get(self, namespace, queue):
        """The endpoint of a queue, or None."""
        return self.by_queue.get((namespace, queue))

    # -- the dispatcher's gate ------------------------------------------------------------
    def room(self, key):
        """How many more jobs of a window ``(namespace, queue, kind)`` may start now (None: no limit)."""
        if key[2] != PUSH_KIND:
            return None
        endpoint = self.by_queue.get(key[:2])
        if endpoint is None:
            return 0
        return max(0, endpoint["concurrency"] - self.running.get(key[:2], 0))

    def started(self, record):
        """A ``push`` job went to a worker process."""
        key = (record["namespace"], record["queue"])
        self.running[key] = self.running.get(key, 0) + 1

    def ended(self, record):
        """A ``push`` job's worker no longer holds it."""
        key = (record["namespace"], record["queue"])
        left = self.running.get(key, 0) - 1
        if left > 0:
            self.running[key] = left
        else:
            self.running.pop(key, None)


def _public(row):
    return {k: row[k] for k in ("namespace", "queue", "url", "method", "headers", "timeout", "concurrency",
                                "updated_at")}
