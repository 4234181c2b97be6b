"""Running one job through the plugin hooks, and the result record sent back to the broker.

:func:`execute_job` calls ``pm.run_job`` (the kind's ``tubeway_run_job`` inside the
``tubeway_wrap_job`` wrappers) with a :class:`JobContext`, and turns what happens
into a result (see :data:`tubeway.core.protocol.RESULT_KEYS`): a return value is
``done``; an exception is ``failed`` with error ``"ExcType: message"``; a job past its
timeout is ``failed`` with ``"timed out after N s"``; a result that cannot be stored
(not JSON- or msgpack-serializable) is ``failed`` with a clear error.
"""
import threading
import time

import msgpack
import orjson

from tubeway.core.errors import JobTimeout, TubewayError

MAX_LOG_LINES = 1000
MAX_LOG_LINE = 10_000


class JobCancelled(TubewayError):
    """The job was cancelled while it ran (its worker is stopping, or it timed out)."""

    code = "cancelled"


class JobContext:
    """What a running job may use besides its record: its settings, logs, progress, deadline, cancellation.

    ``deadline`` is a ``time.monotonic()`` value (None without a timeout);
    ``cancelled`` is a ``threading.Event`` set when the job times out or the worker
    stops: long jobs should check it, or sleep with :meth:`sleep`.
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

    def all_logs(self):
        """The logged lines, with a last line counting those dropped past the limit."""
        if self._dropped_lines:
            return self.logs + [f"... {self._dropped_lines} more lines dropped"]
        return list(self.logs)


def timeout_message(job):
    """The error of a job past its timeout: ``timed out after N s``."""
    return f"timed out after {job.get('timeout'):g} s"


def describe(error):
    """An exception as a result's error: ``"ExcType: message"`` (a timeout: ``"timed out after N s"``)."""
    if isinstance(error, JobTimeout):
        return error.message
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _check_serializable(value, what):
    try:
        orjson.dumps(value)
        msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError, orjson.JSONEncodeError) as exc:
        raise TypeError(f"the job's {what} is not JSON-serializable ({type(value).__name__}): {exc}") from None


def make_result(job, context, state, result=None, error=None, retry=None):
    """A result record as the worker sends it in RESULTS."""
    return {
        "id": job["id"],
        "attempt": job.get("attempts"),
        "state": state,
        "result": result,
        "error": error,
        "retry": retry,
        "logs": context.all_logs(),
        "progress": context.progress_value,
    }


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
    except TypeError as exc:
        return failed_result(pm, job, context, exc)
    return make_result(job, context, "done", result=value)
