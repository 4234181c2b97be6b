"""Running one job through the plugin hooks, and the result record sent back to the broker.

:func:`execute_job` calls ``pm.run_job`` (the kind's ``tubeway_run_job`` inside the
``tubeway_wrap_job`` wrappers) with a :class:`JobContext`, and turns what happens
into a result (see :data:`tubeway.core.protocol.RESULT_KEYS`): a return value is
``done``; an exception is ``failed`` with error ``"ExcType: message"``; a job past its
timeout is ``failed`` with ``"timed out after N s"``; a result that cannot be stored
(not JSON- or msgpack-serializable) is ``failed`` with a clear error.

A job that succeeds hands the broker the jobs it spawned (``"spawn"``, each spec
normalized and validated here, so one bad spec fails the job and none is stored) and,
if it asked to, how many children it awaits (``"await"``).
"""
import threading
import time

import msgpack
import orjson

from tubeway.core.errors import JobTimeout, TubewayError, ValidationError
from tubeway.core.job import normalize_spec

MAX_LOG_LINES = 1000
MAX_LOG_LINE = 10_000
#: Most jobs one job may spawn (in all its calls to ``context.spawn``).
MAX_SPAWN = 10_000


class JobCancelled(TubewayError):
    """The job was cancelled while it ran (its worker is stopping, or it timed out)."""

    code = "cancelled"


class PlainError(Exception):
    """A failure whose message is the job's whole error, with no type name in front (``Exited with status 3``)."""


class SpawnError(TubewayError):
    """A job spawned more than :data:`MAX_SPAWN` jobs, or a job spec it spawned is invalid."""

    code = "invalid"


class JobContext:
    """What a running job may use besides its record: settings, logs, progress, deadline, cancellation, children.

    ``deadline`` is a ``time.monotonic()`` value (None without a timeout);
    ``cancelled`` is a ``threading.Event`` set when the job times out or the worker
    stops: long jobs should check it, or sleep with :meth:`sleep`. :meth:`spawn` and
    :meth:`await_children` make child jobs and wait for them. ``plugins`` is the
    worker's plugin manager (set when the job runs), for calling other hooks.
    """

    def __init__(self, job, settings, started=None):
        self.job = job
        self.settings = settings
        self.started = time.monotonic() if started is None else started
        timeout = job.get("timeout")
        self.deadline = self.started + timeout if timeout is not None else None
        self.cancelled = threading.Event()
        self.logs = []
        self.progress_value = job.get("progress")
        self.spawned = []
        self.await_total = None
        self.spawn_refused = None  # how many jobs a refused call would have made in all
        self.plugins = None
        self._dropped_lines = 0

    def log(self, line):
        """Add a line to the job's logs (kept with its result; at most 1000 lines)."""
        if len(self.logs) < MAX_LOG_LINES:
            self.logs.append(str(line)[:MAX_LOG_LINE])
        else:
            self._dropped_lines += 1

    def progress(self, value):
        """Record the job's progress (any JSON value, e.g. a fraction done); sent with its result."""
        _check_serializable(value, "progress")
        self.progress_value = value

    def remaining(self):
        """Seconds left before the timeout, or None without one."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def timed_out(self, now=None):
        """True once the job is past its timeout."""
        return self.deadline is not None and (time.monotonic() if now is None else now) >= self.deadline

    def check(self):
        """Raise :class:`JobTimeout` past the timeout, :class:`JobCancelled` once cancelled."""
        if self.timed_out():
            raise JobTimeout(timeout_message(self.job))
        if self.cancelled.is_set():
            raise JobCancelled("the job was cancelled")

    def sleep(self, seconds):
        """Sleep ``seconds``, waking early (and raising as :meth:`check` does) on timeout or cancellation."""
        until = time.monotonic() + seconds
        while True:
            self.check()
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            left = self.remaining()
            self.cancelled.wait(remaining if left is None else max(0.0, min(remaining, left)))

    def spawn(self, specs):
        """Submit child jobs, stored by the broker with this job's result only if this job succeeds.

        ``specs`` is a list of native job specs (what ``POST /api/v1/jobs`` takes, with
        its defaults; a single dict is one spec): give them ``"parent": job["id"]`` to
        count them in :meth:`await_children`. Specs are checked when the job returns:
        an invalid one fails the job. More than :data:`MAX_SPAWN` in all raises
        :class:`SpawnError` here and fails the job.
        """
        if isinstance(specs, dict):
            specs = [specs]
        specs = [dict(spec) if isinstance(spec, dict) else spec for spec in specs]
        if len(self.spawned) + len(specs) > MAX_SPAWN:
            self.spawn_refused = max(self.spawn_refused or 0, len(self.spawned) + len(specs))
            raise SpawnError(spawn_limit_message(self.spawn_refused))
        self.spawned.extend(specs)

    def await_children(self, total):
        """Keep this job ``running`` after it returns until ``total`` jobs naming it as ``parent`` have ended.

        It then ends ``done`` with the result it returned, or ``failed`` as soon as
        one child ends failed. ``total`` counts every child, spawned by this job or
        not; 0 ends the job at once. A later call replaces the total.
        """
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise ValueError(f"await_children takes a number of jobs >= 0, got {total!r}")
        self.await_total = total

    def all_logs(self):
        """The logged lines, with a last line counting those dropped past the limit."""
        if self._dropped_lines:
            return self.logs + [f"... {self._dropped_lines} more lines dropped"]
        return list(self.logs)


def timeout_message(job):
    """The error of a job past its timeout: ``timed out after N s``."""
    return f"timed out after {job.get('timeout'):g} s"


def describe(error):
    """An exception as a result's error: ``"ExcType: message"`` (a timeout: ``"timed out after N s"``; a
    :class:`PlainError`: its message alone)."""
    if isinstance(error, JobTimeout):
        return error.message
    if isinstance(error, PlainError):
        return str(error)
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _check_serializable(value, what):
    try:
        orjson.dumps(value)
        msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError, orjson.JSONEncodeError) as exc:
        raise TypeError(f"the job's {what} is not JSON-serializable ({type(value).__name__}): {exc}") from None


def spawn_limit_message(count):
    """The error of a job spawning too many jobs."""
    return f"a job may spawn at most {MAX_SPAWN} jobs; this one spawned {count}"


def make_result(job, context, state, result=None, error=None, retry=None, children=None):
    """A result record as the worker sends it in RESULTS; ``children`` adds ``spawn`` and ``await``."""
    record = {
        "id": job["id"],
        "attempt": job.get("attempts"),
        "lease": job.get("started_at"),
        "state": state,
        "result": result,
        "error": error,
        "retry": retry,
        "logs": context.all_logs(),
        "progress": context.progress_value,
        "duration": max(0.0, time.monotonic() - context.started),
    }
    if children:
        record.update(children)
    return record


def children_fields(pm, job, context):
    """``spawn`` (normalized, validated specs) and ``await`` of a job that succeeded; raises SpawnError."""
    if context.spawn_refused is not None or len(context.spawned) > MAX_SPAWN:
        raise SpawnError(spawn_limit_message(context.spawn_refused or len(context.spawned)))
    fields = {}
    if context.spawned:
        known = set(pm.kinds())
        fields["spawn"] = [_child(pm, context, spec, index, known) for index, spec in enumerate(context.spawned)]
    if context.await_total is not None:
        fields["await"] = context.await_total
    return fields


def _child(pm, context, spec, index, known_kinds):
    try:
        normalized = normalize_spec(spec, known_kinds=known_kinds)
        pm.validate_job(normalized, context.settings)
        _check_serializable(normalized["payload"], "payload")
    except Exception as exc:  # a plugin's validator may raise anything; execute_job never raises
        message = exc.message if isinstance(exc, ValidationError) else describe(exc)
        raise SpawnError(f"spawned job {index} is invalid: {message}") from exc
    return normalized


def failed_result(pm, job, context, error):
    """The result of a failed attempt, with the plugins' retry decision."""
    return make_result(job, context, "failed", error=describe(error), retry=pm.retry_decision(job, error))


def timed_out_result(pm, job, context):
    """The result of an attempt past its timeout."""
    return failed_result(pm, job, context, JobTimeout(timeout_message(job)))


def execute_job(pm, job, context):
    """Run ``job`` with ``context`` in this thread and return its result record (never raises)."""
    try:
        value = pm.run_job(job, context)
    except Exception as exc:
        if context.timed_out():
            return timed_out_result(pm, job, context)
        return failed_result(pm, job, context, exc)
    if context.timed_out():
        return timed_out_result(pm, job, context)
    try:
        _check_serializable(value, "result")
        children = children_fields(pm, job, context)
    except (TypeError, SpawnError) as exc:
        return failed_result(pm, job, context, exc)
    return make_result(job, context, "done", result=value, children=children)
