"""The Accepted jobs API's job shape, and the built-in plugin ``accepted`` giving it to callbacks.

Kept apart from :mod:`tubeway.broker.http.accepted` (which needs Tornado) so that a
worker process, which sends callbacks, loads it cheaply.
"""
from tubeway import hookimpl

NAMESPACE = "accepted"


def accepted_job(job):
    """A native job record as the Accepted jobs API shows it."""
    return {
        "id": job["id"],
        "queue": job["queue"],
        "status": job["state"],
        "priority": job["priority"],
        "params": job.get("payload"),
        "result": job.get("result"),
        "error": job.get("error"),
    }


@hookimpl
def tubeway_callback_body(job):
    """An Accepted job's callback URL gets the job as ``GET /jobs/<id>`` answers; other namespaces: no opinion."""
    return accepted_job(job) if job.get("namespace") == NAMESPACE else None
