"""Built-in plugin ``push``: the job kind ``push``, sent to the HTTP endpoint registered for its queue.

The broker dispatches a ``push`` job only while its queue has an endpoint (and fewer
than the endpoint's ``concurrency`` of its jobs run), and sends the endpoint with the
job (see :mod:`tubeway.broker.endpoints`). The worker sends the endpoint's ``method``
to its ``url`` with its ``headers`` and the JSON ``tubeway_push_body`` answers (by
default ``{"job": record, "token": lock}``), waiting up to its ``timeout``, through the
worker process's one HTTP client (:mod:`.http_client`), ``http_allowed_hosts`` applied.

A 2xx answer completes the job: its result is the body, parsed when the content type is
JSON, else the text. Any other answer fails the attempt with its status text as the error
(``Internal Server Error``), as does a timeout or a refused connection; the
job's ``attempts`` and ``backoff`` decide whether it runs again.
"""
import orjson

from tubeway import hookimpl
from tubeway.plugins.builtin.http_client import CallFailed, read_start, reason_phrase, send, size_pool
from tubeway.plugins.hookspecs import JobKind
from tubeway.workers.executor import PlainError

KIND = "push"
#: ``push`` jobs one worker process sends at once when the settings do not say (``push_concurrency``).
DEFAULT_CONCURRENCY = 16
#: Bytes of an endpoint's answer kept as the job's result.
RESULT_BYTES = 1024 * 1024
PRIVATE = ("lock", "endpoint")


class PushFailed(PlainError):
    """The endpoint answered other than 2xx, timed out or could not be reached: the message is the job's error."""


def answer_value(response, content):
    """A 2xx answer as the job's result: JSON when the content type says so (and it parses), else text."""
    text = content.decode("utf-8", errors="replace")
    if "json" in response.headers.get("Content-Type", "").lower():
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            return text
    return text


def push(job, body, allowed_hosts=None):
    """Send one job to its endpoint; returns the result (raises :class:`PushFailed`)."""
    endpoint = job.get("endpoint")
    if not endpoint:
        raise PushFailed("no endpoint is registered for this queue")
    method, url, timeout = endpoint["method"], endpoint["url"], endpoint["timeout"]
    try:
        response = send(method, url, timeout, headers=endpoint.get("headers") or None, json=body, stream=True,
                        allowed_hosts=allowed_hosts)
        try:
            content, _ = read_start(response, RESULT_BYTES, timeout, method, url)
        finally:
            response.close()
    except CallFailed as exc:
        raise PushFailed(str(exc)) from None
    if not 200 <= response.status_code < 300:
        raise PushFailed(reason_phrase(response))
    return answer_value(response, content)


@hookimpl
def tubeway_job_kinds(settings):
    """The ``push`` kind, ``push_concurrency`` sends at once per worker process."""
    concurrency = getattr(settings, "push_concurrency", None) or DEFAULT_CONCURRENCY
    return [JobKind(KIND, True, "Sends the job to the HTTP endpoint registered for its queue; the answer is "
                                "its result.", concurrency=concurrency)]


@hookimpl(trylast=True)
def tubeway_startup(role, settings):
    """Room in the shared connection pool for ``push_concurrency`` sends at once besides ``http`` calls (after
    the ``http`` kind sized it for its own)."""
    size_pool((getattr(settings, "push_concurrency", None) or DEFAULT_CONCURRENCY)
              + (getattr(settings, "http_concurrency", None) or 0) + getattr(settings, "worker_threads", 0))


@hookimpl
def tubeway_run_job(job, context):
    """Push the job; the endpoint's answer is the result."""
    record = {k: v for k, v in job.items() if k not in PRIVATE}
    body = context.plugins.push_body(dict(record, lock=job.get("lock")))
    return push(job, body, getattr(context.settings, "http_allowed_hosts", None))


@hookimpl(trylast=True)
def tubeway_push_body(job):
    """By default the record itself and the attempt's lock token."""
    record = {k: v for k, v in job.items() if k not in PRIVATE}
    return {"job": record, "token": job.get("lock")}
