"""Built-in plugin ``testing``: small job kinds for trying Tubeway out and for its own tests.

* ``noop``: does nothing; the result is None.
* ``echo``: the result is the payload.
* ``sleep``: sleeps ``payload`` seconds (a number); stops early when the job is
  cancelled or passes its timeout.
* ``fail``: fails with the payload as message (default "failed on purpose").
* ``spawn``: payload ``{"children": [spec, ...], "await": bool}``; spawns the
  children (native job specs; ``parent`` and ``namespace`` default to this job's)
  and, when ``await`` is true, awaits them all; the result is ``{"spawned": n}``.
"""
import math

from tubeway import hookimpl
from tubeway.core.errors import ValidationError
from tubeway.core.job import DEFAULT_NAMESPACE
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


def _spawn(job, context):
    payload = job.get("payload") or {}
    children = [{"parent": job["id"], "namespace": job.get("namespace") or DEFAULT_NAMESPACE, **child}
                for child in payload.get("children") or ()]
    context.spawn(children)
    if payload.get("await"):
        context.await_children(len(children))
    return {"spawned": len(children)}


RUNNERS = {"noop": _noop, "echo": _echo, "sleep": _sleep, "fail": _fail, "spawn": _spawn}
DESCRIPTIONS = {
    "noop": "Does nothing; the result is null.",
    "echo": "The result is the payload.",
    "sleep": "Sleeps payload seconds (a number), stopping early on timeout or cancellation.",
    "fail": "Fails with the payload as message.",
    "spawn": 'Spawns payload["children"] (job specs) and awaits them when payload["await"] is true.',
}


@hookimpl
def tubeway_job_kinds():
    """``noop``, ``echo``, ``sleep``, ``fail`` and ``spawn``."""
    return [JobKind(name, True, DESCRIPTIONS[name]) for name in RUNNERS]


@hookimpl
def tubeway_validate_job(spec):
    """``sleep`` takes seconds >= 0; ``fail`` a message string (or nothing); ``spawn`` ``{"children", "await"}``."""
    payload = spec.get("payload")
    if spec["kind"] == "sleep" and payload is not None:
        if isinstance(payload, bool) or not isinstance(payload, (int, float)) or not math.isfinite(payload) \
                or payload < 0:
            raise ValidationError("a sleep job's payload must be a number of seconds >= 0", "payload")
    if spec["kind"] == "fail" and payload is not None and not isinstance(payload, str):
        raise ValidationError("a fail job's payload must be a message string", "payload")
    if spec["kind"] == "spawn":
        _check_spawn(payload)


def _check_spawn(payload):
    if payload is None:
        return
    if not isinstance(payload, dict) or set(payload) - {"children", "await"}:
        raise ValidationError('a spawn job\'s payload must be an object {"children": [...], "await": bool}',
                              "payload")
    children = payload.get("children")
    if children is not None and (not isinstance(children, list)
                                 or not all(isinstance(child, dict) for child in children)):
        raise ValidationError("a spawn job's children must be a list of job objects", "payload")
    if not isinstance(payload.get("await", False), bool):
        raise ValidationError("a spawn job's 'await' must be a boolean", "payload")


@hookimpl
def tubeway_run_job(job, context):
    """Run one of the testing kinds."""
    return RUNNERS[job["kind"]](job, context)
