"""Built-in plugin ``external``: jobs that external workers take over HTTP.

Jobs of kind ``external`` are never sent to Tubeway's worker processes: an outside
worker leases one with the Accepted jobs API's ``POST /want_job`` (or BullMQ's
workers) and reports back with ``PUT /jobs/<id>``. The plugin only declares the
kind, so that submitting such jobs is allowed and workers do not announce it.
"""
from tubeway import hookimpl
from tubeway.plugins.hookspecs import JobKind

KIND = "external"


@hookimpl
def tubeway_job_kinds():
    """The ``external`` kind, run outside Tubeway's worker processes."""
    return [JobKind(KIND, runs_on_workers=False, description="Taken and finished by an external worker over HTTP.")]
