"""The ``stamp`` job kind for the peer benchmarks: its first statement records when it started.

Loaded by Tubeway's workers as a plugin (the harness puts a ``.dist-info`` with the entry
point on ``PYTHONPATH``). The result is ``time.monotonic()`` at the start of the run.
"""
import time

from tubeway import hookimpl
from tubeway.plugins.hookspecs import JobKind


@hookimpl
def tubeway_job_kinds():
    """``stamp``: the result is the worker's ``time.monotonic()`` when the job started."""
    return [JobKind("stamp", True, "The result is time.monotonic() at the job's start (benchmarks).")]


@hookimpl
def tubeway_run_job(job, context):
    """Run a ``stamp`` job."""
    return time.monotonic()
