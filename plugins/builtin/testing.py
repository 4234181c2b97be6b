"""Built-in plugin ``testing``: small job kinds for trying Tubeway out and for its own tests.

* ``noop``: does nothing; the result is None.
* ``echo``: the result is the payload.
* ``sleep``: sleeps ``payload`` seconds (a number); stops early when the job is
  cancelled or passes its timeout.
* ``fail``: fails with the payload as message (default "failed on purpose").
"""
import math

from tubeway import hookimpl
from tubeway.core.errors import ValidationError
from tubeway.plugins.hookspecs import JobKind

DEFAULT_FAILURE = "failed on purpose"


class FailedOnPurpose(Exception):
    """The error a ``fail`` job raises."""


def _noop(job, context):
    return None


def _echo(job, context):
    return job.get("payload")


def _sleep(job, context):
    seconds = float(job.get("payload") or 0)
    context.sleep(seconds)


def _fail(job, context):
    raise FailedOnPurpose(job.get("payload") or DEFAULT_FAILURE)


RUNNERS = {"noop": _noop, "echo": _echo, "sleep": _sleep, "fail": _fail}
DESCRIPTIONS = {
    "noop": "Does nothing; the result is null.",
    "echo": "The result is the payload.",
    "sleep": "Sleeps payload seconds (a number), stopping early on timeout or cancellation.",
    "fail": "Fails with the payload as message.",
}


@hookimpl
def tubeway_job_kinds():
    """``noop``, ``echo``, ``sleep`` and ``fail``."""
    return [JobKind(name, True, DESCRIPTIONS[name]) for name in RUNNERS]


@hookimpl
def tubeway_validate_job(spec):
    """``sleep`` takes a number of seconds >= 0; ``fail`` takes a message string (or nothing)."""
    payload = spec.get("payload")
    if spec["kind"] == "sleep" and payload is not None:
        if isinstance(payload, bool) or not isinstance(payload, (int, float)) or not math.isfinite(payload) \
                or payload < 0:
            raise ValidationError("a sleep job's payload must be a number of seconds >= 0", "payload")
    if spec["kind"] == "fail" and payload is not None and not isinstance(payload, str):
        raise ValidationError("a fail job's payload must be a message string", "payload")


@hookimpl
def tubeway_run_job(job, context):
    """Run one of the testing kinds."""
    return RUNNERS[job["kind"]](job, context)
