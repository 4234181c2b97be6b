"""What a well-formed worker message is: every field of every worker command, checked before use.

The broker drops a worker message that fails these checks as a whole (logged,
rate-limited, see :class:`DropLog`), so nothing of it is applied. The checks are
about shape and size only; whether a result matches a lease is the broker's
business (see :mod:`tubeway.broker.workerlink`).
"""
import time

from tubeway.core import protocol as p
from tubeway.core.job import MAX_NAME

#: Most kinds or queues a worker may announce.
MAX_NAMES = 1000
MAX_CREDIT = p.MAX_CREDIT
#: Most results (and started ids) in one RESULTS message, and most held ids in a HEARTBEAT.
MAX_ITEMS = 100000
MAX_SPAWN = 10000
MAX_TEXT = 1 << 20
RESULT_STATES = ("done", "failed", p.RETURNED)


class Malformed(ValueError):
    """A worker message that breaks the protocol; the text says which field."""


def _is_int(value, low=0, high=2**63 - 1):
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _names(value, field, optional=False):
    if value is None and optional:
        return
    if not isinstance(value, list) or len(value) > MAX_NAMES or not all(
            isinstance(name, str) and 0 < len(name) <= MAX_NAME for name in value):
        raise Malformed(f"'{field}' must be a list of at most {MAX_NAMES} names")


def _ids(value, field, limit=MAX_ITEMS):
    if value is None:
        return
    if not isinstance(value, list) or len(value) > limit or not all(
            isinstance(i, str) and len(i) <= 64 for i in value):
        raise Malformed(f"'{field}' must be a list of job ids")


def _optional(body, field, check, what):
    value = body.get(field)
    if value is not None and not check(value):
        raise Malformed(f"'{field}' must be {what}")


def check_ready(body):
    """READY: ``kinds`` (names), ``queues`` (names or null), ``credit`` (1..MAX_CREDIT), ``pid``, ``host``."""
    _names(body.get("kinds"), "kinds")
    _names(body.get("queues"), "queues", optional=True)
    if not _is_int(body.get("credit", 1), 1, MAX_CREDIT):
        raise Malformed(f"'credit' must be an integer from 1 to {MAX_CREDIT}")
    _optional(body, "pid", _is_int, "an integer")
    _optional(body, "host", lambda v: isinstance(v, str) and len(v) <= 255, "a host name")


def check_heartbeat(body):
    """HEARTBEAT: empty, or ``held`` (the ids a worker holds) with ``seen`` (JOBS messages it received)."""
    _ids(body.get("held"), "held")
    _optional(body, "seen", _is_int, "a count")


def check_results(body):
    """RESULTS: ``results`` (see :func:`check_result`), ``started`` (ids), ``credit``."""
    results = body.get("results")
    if results is None:
        results = []
    if not isinstance(results, list) or len(results) > MAX_ITEMS:
        raise Malformed(f"'results' must be a list of at most {MAX_ITEMS} results")
    for result in results:
        check_result(result)
    _ids(body.get("started"), "started")
    _optional(body, "credit", lambda v: _is_int(v, 1, MAX_CREDIT), f"an integer from 1 to {MAX_CREDIT}")


def check_result(result):
    """One result: the keys of ``protocol.RESULT_KEYS`` (plus ``spawn`` and ``await``), each of its type."""
    if not isinstance(result, dict):
        raise Malformed("a result must be a map")
    if not isinstance(result.get("id"), str) or not _is_int(result.get("attempt")):
        raise Malformed("a result needs a job 'id' and its 'attempt'")
    if result.get("state") not in RESULT_STATES:
        raise Malformed(f"a result's 'state' must be one of {', '.join(RESULT_STATES)}")
    _optional(result, "lease", _is_number, "a number")
    _optional(result, "error", lambda v: isinstance(v, str) and len(v) <= MAX_TEXT, "a string")
    _optional(result, "retry", lambda v: isinstance(v, bool), "a boolean")
    _optional(result, "duration", _is_number, "a number")
    _optional(result, "logs", lambda v: isinstance(v, list) and all(isinstance(line, str) for line in v),
              "a list of strings")
    _optional(result, "spawn", lambda v: isinstance(v, list) and len(v) <= MAX_SPAWN, f"at most {MAX_SPAWN} specs")
    _optional(result, "await", _is_int, "a count")


CHECKS = {p.READY: check_ready, p.HEARTBEAT: check_heartbeat, p.RESULTS: check_results,
          p.DISCONNECT: lambda body: None}


def check_worker_message(command, body):
    """Raise :class:`Malformed` unless ``body`` is a well-formed ``command`` from a worker."""
    check = CHECKS.get(command)
    if check is None:
        raise Malformed(f"unknown worker command {command[:32]!r}")
    if not isinstance(body, dict):
        raise Malformed("a body must be a map")
    check(body)


class DropLog:
    """Logs dropped messages at most once per ``interval`` seconds, counting the ones in between."""

    def __init__(self, logger, interval=5.0, clock=time.monotonic):
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self.suppressed = 0
        self.dropped = 0
        self._next = 0.0

    def dropped_message(self, peer, reason):
        """Note one dropped message from ``peer`` (bytes) and why."""
        self.dropped += 1
        now = self.clock()
        if now < self._next:
            self.suppressed += 1
            return
        more = f" ({self.suppressed} more dropped since the last report)" if self.suppressed else ""
        self.logger.warning("dropped a malformed message from %s: %s%s", peer[:16].hex() or "?", reason, more)
        self.suppressed = 0
        self._next = now + self.interval
