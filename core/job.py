"""The one job model every dialect maps onto: states, submission specs, backoff.

A job travels as a plain dict (msgpack on the wire, JSON in storage). A *spec* is
what a client submits; :func:`normalize_spec` checks it and fills defaults. A
*record* is what the broker returns: the spec plus state, attempts, result,
error, progress, logs and timestamps (epoch seconds, floats).
"""
import enum
import math
import random
import time
from urllib.parse import urlsplit

import requests

from tubeway.core.errors import UnknownKind, ValidationError


class State(str, enum.Enum):
    """Where a job is in its life; the native API uses these words."""

    DELAYED = "delayed"
    QUEUED = "queued"
    RUNNING = "running"
    #: Running, and asked to stop: its worker is stopping it; it ends ``cancelled``.
    CANCELLING = "cancelling"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def ended(self):
        """True for states a job never leaves on its own."""
        return self in ENDED


ENDED = frozenset({State.DONE, State.FAILED, State.CANCELLED})
STATES = [s.value for s in State]

DEFAULT_NAMESPACE = "default"
DEFAULT_QUEUE = "default"
BACKOFF_TYPES = ("fixed", "linear", "exponential")
MAX_NAME = 200
MAX_PRIORITY = 2**31 - 1
#: Longest job id (client-chosen or a ``parent``) storage holds.
MAX_ID = 36
MAX_LABEL_VALUE = 1000
#: Most ended jobs ``keep_done`` / ``keep_failed`` may keep per queue.
MAX_KEEP = 1_000_000
MAX_ANNOTATION_VALUE = 5000

#: The fields a native submission may carry.
SPEC_FIELDS = (
    "namespace", "queue", "kind", "payload", "priority", "delay", "run_at", "attempts",
    "backoff", "timeout", "result_ttl", "callback_url", "unique_key", "labels", "parent", "name",
    "annotations", "lifo", "keep_done", "keep_failed",
)
#: States of a job that has not ended and holds no place in a queue.
UNENDED = ("delayed", "queued", "running", "cancelling")


def storable(text):
    """True for a string storage holds as given: PostgreSQL text cannot hold the NUL character."""
    return "\x00" not in text


def _name(spec, field, default):
    value = spec.get(field, default)
    if not isinstance(value, str) or not value or len(value) > MAX_NAME or not storable(value):
        raise ValidationError(f"'{field}' must be a non-empty string of at most {MAX_NAME} characters "
                              "(no NUL)", field)
    return value


def _number(spec, field, default=None, minimum=0, integer=False, maximum=None):
    value = spec.get(field, default)
    if value is None:
        return None
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        raise ValidationError(f"'{field}' must be {'an integer' if integer else 'a number'}", field)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ValidationError(f"'{field}' must be {bound}", field)
    return value


def _seconds(spec, field):
    """A number of seconds >= 0, as a float (storage holds any float, not any integer), or None."""
    value = _number(spec, field)
    return None if value is None else float(value)


def normalize_backoff(value, field="backoff"):
    """Check a backoff: a number of seconds (fixed) or ``{type, delay, max_delay?, jitter?}``."""
    if value is None:
        return {"type": "exponential", "delay": 1.0, "max_delay": 3600.0, "jitter": False}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = {"type": "fixed", "delay": value}
    if not isinstance(value, dict):
        raise ValidationError(f"'{field}' must be a number or an object", field)
    unknown = set(value) - {"type", "delay", "max_delay", "jitter"}
    if unknown:
        raise ValidationError(f"'{field}' has unknown field(s): {', '.join(sorted(unknown))}", field)
    kind = value.get("type", "exponential")
    if kind not in BACKOFF_TYPES:
        raise ValidationError(f"'{field}.type' must be one of {', '.join(BACKOFF_TYPES)}", field)
    try:
        delay = _number(value, "delay", 1.0)
        max_delay = _number(value, "max_delay", 3600.0)
    except ValidationError as error:
        raise ValidationError(f"'{field}.{error.field}' must be a number >= 0", field) from None
    if delay is None or max_delay is None:
        raise ValidationError(f"'{field}' delays must be numbers, not null", field)
    jitter = value.get("jitter", False)
    if not isinstance(jitter, bool):
        raise ValidationError(f"'{field}.jitter' must be a boolean", field)
    return {"type": kind, "delay": float(delay), "max_delay": float(max_delay), "jitter": jitter}


def backoff_delay(backoff, attempts_made, rng=random.random):
    """Seconds to wait before the next attempt, after ``attempts_made`` attempts (>= 1).

    Jitter only ever lengthens the delay: the computed delay is a lower bound.
    """
    backoff = backoff or normalize_backoff(None)
    base = backoff["delay"]
    if backoff["type"] == "linear":
        delay = base * attempts_made
    elif backoff["type"] == "exponential":
        delay = base * 2 ** min(attempts_made - 1, 62)
    else:
        delay = base
    delay = min(delay, max(backoff.get("max_delay", delay), base))
    if backoff.get("jitter"):
        delay += delay * 0.5 * rng()
    return delay


def check_metadata(values, field, removals=False):
    """Check labels or annotations: ``{key: string}`` (``None`` values too when ``removals``, meaning delete).

    Keys are non-empty, at most :data:`MAX_NAME` characters; values at most
    :data:`MAX_LABEL_VALUE` (labels) or :data:`MAX_ANNOTATION_VALUE` (annotations).
    """
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise ValidationError(f"'{field}' must be an object of string values", field)
    longest = MAX_LABEL_VALUE if field == "labels" else MAX_ANNOTATION_VALUE
    for key, value in values.items():
        if value is None and removals:
            value = ""
        if not isinstance(key, str) or not key or len(key) > MAX_NAME or not isinstance(value, str) \
                or len(value) > longest or not storable(key) or not storable(value):
            raise ValidationError(f"'{field}' must map non-empty keys to strings of at most {longest} "
                                  "characters (no NUL)", field)
    return values


def _labels(spec):
    return check_metadata(spec.get("labels"), "labels")


def _flag(spec, field):
    value = spec.get(field, False)
    if not isinstance(value, bool):
        raise ValidationError(f"'{field}' must be true or false", field)
    return value


def _optional_name(spec, field):
    return None if spec.get(field) is None else _name(spec, field, None)


def normalize_spec(spec, now=None, known_kinds=None):
    """Check a submitted job and return the normalized spec the broker stores.

    Raises :class:`ValidationError` naming the field. ``known_kinds``, when given,
    is the set of kinds some plugin runs.
    """
    if not isinstance(spec, dict):
        raise ValidationError("a job must be a JSON object", None)
    unknown = set(spec) - set(SPEC_FIELDS)
    if unknown:
        field = sorted(unknown)[0]
        raise ValidationError(f"unknown field '{field}'", field)
    now = time.time() if now is None else now
    kind = _name(spec, "kind", None)
    if known_kinds is not None and kind not in known_kinds:
        raise UnknownKind(f"no installed plugin runs jobs of kind '{kind}'", "kind")
    delay = _seconds(spec, "delay")
    run_at = _seconds(spec, "run_at")
    if delay is not None:
        run_at = now + delay
    callback = spec.get("callback_url")
    if callback is not None and http_url_host(callback) is None:
        raise ValidationError("'callback_url' must be an http(s) URL", "callback_url")
    unique_key = spec.get("unique_key")
    if unique_key is not None and (not isinstance(unique_key, str) or not unique_key or len(unique_key) > MAX_NAME
                                   or not storable(unique_key)):
        raise ValidationError("'unique_key' must be a non-empty string", "unique_key")
    parent = spec.get("parent")
    if parent is not None and (not isinstance(parent, str) or len(parent) > MAX_ID or not storable(parent)):
        raise ValidationError("'parent' must be a job id", "parent")
    return {
        "namespace": _name(spec, "namespace", DEFAULT_NAMESPACE),
        "queue": _name(spec, "queue", DEFAULT_QUEUE),
        "kind": kind,
        "payload": spec.get("payload"),
        "priority": _number(spec, "priority", 0, minimum=-MAX_PRIORITY, maximum=MAX_PRIORITY, integer=True) or 0,
        "run_at": run_at if run_at is not None and run_at > now else None,
        "max_attempts": _number(spec, "attempts", 1, minimum=1, maximum=10000, integer=True) or 1,
        "backoff": normalize_backoff(spec.get("backoff")),
        "timeout": _seconds(spec, "timeout"),
        "result_ttl": _seconds(spec, "result_ttl"),
        "callback_url": callback,
        "unique_key": unique_key,
        "labels": _labels(spec),
        "parent": parent,
        "name": _optional_name(spec, "name"),
        "annotations": check_metadata(spec.get("annotations"), "annotations"),
        "lifo": _flag(spec, "lifo"),
        "keep_done": _number(spec, "keep_done", None, integer=True, maximum=MAX_KEEP),
        "keep_failed": _number(spec, "keep_failed", None, integer=True, maximum=MAX_KEEP),
    }


def http_url_host(url):
    """The host of an http(s) URL that Tubeway's HTTP client can call, else None.

    The URL is parsed as the client will prepare it, so what passes here never fails
    later for its syntax: no whitespace or control characters, a host, a valid port.
    """
    if not isinstance(url, str) or any(ord(c) <= 32 or c == "\x7f" for c in url):
        return None
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port
        if parts.scheme not in ("http", "https") or not host:
            return None
        requests.PreparedRequest().prepare_url(url, None)
    except (ValueError, requests.RequestException):
        return None
    return host
