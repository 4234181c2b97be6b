"""Built-in plugin ``callback``: the job kinds ``http`` and ``callback``.

Every call goes through the worker process's one HTTP client,
:mod:`tubeway.plugins.builtin.http_client`; an ``http`` payload is checked by
:mod:`tubeway.plugins.builtin.http_task`.

The ``http`` kind makes the call its payload describes (the Queue task API's tasks):
``{"method", "url", "headers"?, "json"?, "query_string"?, "body"?, "timeout"?, "sleep"?}``.
A non-empty ``json`` wins over ``query_string``, which wins over ``body``;
``query_string`` becomes the URL's query for GET and HEAD, else a form-encoded body.
The result is ``{"status", "headers", "body" (first 64 KiB as text), "truncated",
"duration"}``; a network error, a timeout or a 5xx answer fails the attempt (it is
retried while attempts remain); any other answer is done. ``sleep`` microseconds
pause the job's slot after the call.

The setting ``http_allowed_hosts`` restricts the hosts both kinds call, redirects
included: a call or a redirect hop to a host it does not allow fails the attempt
before anything is sent there, and is not retried.

The ``callback`` kind tells a job's ``callback_url`` that the job ended: the broker
creates a ``callback`` job (``settings.callback_attempts`` attempts, exponential
backoff) with payload ``{"url", "job"}``, ``job`` being the ended job's native record.
The body POSTed as JSON is what the ``tubeway_callback_body`` hook answers for it (a
dialect's shape for its namespace; by default, this plugin's, the record itself); a
payload ``{"url", "body"}`` (stored by an older version) is sent as it is. A network
error or a non-2xx answer fails the attempt so it is retried.
"""
import time
from urllib.parse import urlencode

import orjson
from requests.structures import CaseInsensitiveDict

from tubeway import hookimpl
from tubeway.core.errors import ValidationError
from tubeway.core.job import http_url_host
from tubeway.plugins.builtin.http_client import (ERROR_BODY_CHARS, CallFailed, HostNotAllowed, post_json,
                                                 read_start, reason_phrase, send, size_pool)
from tubeway.plugins.builtin.http_task import check_url, validate_http_payload
from tubeway.plugins.hookspecs import JobKind

KIND = "callback"
HTTP_KIND = "http"
DEFAULT_TIMEOUT = 30.0
#: ``http`` jobs one worker process runs at once when the settings do not say (``http_concurrency``).
DEFAULT_CONCURRENCY = 16
#: Bytes of an ``http`` job's answer kept in its result.
RESULT_BODY_BYTES = 64 * 1024
URL_QUERY_METHODS = ("GET", "HEAD")


# -- the http kind: the call ------------------------------------------------------------

def is_empty(value):
    """True for a task's absent body part: None, ``""``, ``{}`` or ``[]``."""
    return value is None or (isinstance(value, (str, dict, list)) and not value)


def with_query(url, query):
    """``url`` with ``query`` appended (a trailing ``?`` or ``&`` trimmed first)."""
    base, hash_mark, fragment = url.partition("#")
    base = base.rstrip("?&")
    return f"{base}{'&' if '?' in base else '?'}{query}{hash_mark}{fragment}"


def _query_text(value):
    """A query value as text: JSON's spelling for numbers and booleans, ``""`` for null."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode() if isinstance(value, (bool, float)) else str(value)


def encode_query(query):
    """A ``query_string`` object form-encoded; an array value repeats its key."""
    pairs = [(key, _query_text(item)) for key, value in query.items()
             for item in (value if isinstance(value, list) else [value])]
    return urlencode(pairs)


def request_parts(payload):
    """``(method, url, headers, data, json)`` of the call an ``http`` payload describes."""
    method = payload["method"].upper()
    url, headers = payload["url"], CaseInsensitiveDict(payload.get("headers") or {})
    json_value, query, raw = payload.get("json"), payload.get("query_string"), payload.get("body")
    if not is_empty(json_value):
        return method, url, headers, None, json_value
    if not is_empty(query):
        if method in URL_QUERY_METHODS:
            return method, with_query(url, encode_query(query)), headers, None, None
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        return method, url, headers, encode_query(query).encode("ascii"), None
    return method, url, headers, (raw.encode("utf-8") if raw else None), None


def call_http(payload, timeout, allowed_hosts=None):
    """Make the call an ``http`` payload describes and return the job's result.

    Raises :class:`CallFailed` on a network error or a 5xx answer (``CallTimeout``
    when connecting, waiting for the answer or reading it takes over ``timeout``;
    ``HostNotAllowed`` when it or a redirect is for a host not in ``allowed_hosts``).
    """
    method, url, headers, data, json_value = request_parts(payload)
    started = time.perf_counter()
    response = send(method, url, timeout, headers=headers, data=data, json=json_value, stream=True,
                    allowed_hosts=allowed_hosts)
    try:
        content, truncated = read_start(response, RESULT_BODY_BYTES, timeout, method, url)
    finally:
        response.close()
    text = content.decode("utf-8", errors="replace")
    if response.status_code >= 500:
        snippet = text[:ERROR_BODY_CHARS]
        message = f"HTTP {response.status_code} {reason_phrase(response)}" + (f": {snippet}" if snippet else "")
        raise CallFailed(message, status=response.status_code)
    return {"status": response.status_code, "headers": dict(response.headers), "body": text,
            "truncated": truncated, "duration": round(time.perf_counter() - started, 6)}


def _call_timeout(value, context):
    timeout = value or getattr(context.settings, "queue_default_timeout", DEFAULT_TIMEOUT)
    remaining = context.remaining()
    return timeout if remaining is None else max(0.001, min(timeout, remaining))


def _allowed_hosts(context):
    return getattr(context.settings, "http_allowed_hosts", None)


def _run_http(job, context):
    payload = job["payload"]
    try:
        result = call_http(payload, _call_timeout(payload.get("timeout"), context), _allowed_hosts(context))
        context.log(f"{payload['method'].upper()} {payload['url']} -> {result['status']} "
                    f"in {result['duration']:.3f} s")
        return result
    finally:
        sleep = payload.get("sleep")
        if sleep:
            context.cancelled.wait(sleep / 1e6)  # wakes early when the job is cancelled


def _run_callback(job, context):
    payload = job["payload"]
    body = payload["body"] if "body" in payload else context.plugins.callback_body(payload.get("job"))
    timeout = _call_timeout(None, context)
    response = post_json(payload["url"], body, timeout, headers=payload.get("headers"),
                         allowed_hosts=_allowed_hosts(context))
    return {"status": response.status_code}


def _validate_callback(payload, settings):
    if not isinstance(payload, dict) or http_url_host(payload.get("url")) is None:
        raise ValidationError("a callback job's payload needs an http(s) 'url'", "payload")
    check_url(payload["url"], settings)
    if "body" not in payload and not isinstance(payload.get("job"), dict):
        raise ValidationError("a callback job's payload needs the ended 'job' (an object) or a 'body'", "payload")
    headers = payload.get("headers")
    if headers is not None and (not isinstance(headers, dict)
                                or not all(isinstance(v, str) for v in headers.values())):
        raise ValidationError("a callback job's 'headers' must map names to strings", "payload")


# -- hooks -------------------------------------------------------------------------------

@hookimpl
def tubeway_job_kinds(settings):
    """The ``http`` kind (``http_concurrency`` calls at once per worker process) and the ``callback`` kind."""
    concurrency = getattr(settings, "http_concurrency", None) or DEFAULT_CONCURRENCY
    return [JobKind(HTTP_KIND, True, "Makes the HTTP call its payload describes (Queue task API tasks).",
                    concurrency=concurrency),
            JobKind(KIND, True, "POSTs a finished job to its callback URL, retried on failure.")]


@hookimpl
def tubeway_startup(role, settings):
    """Size the shared connection pool for ``http_concurrency`` calls at once, plus the worker threads."""
    concurrency = getattr(settings, "http_concurrency", None) or DEFAULT_CONCURRENCY
    size_pool(concurrency + getattr(settings, "worker_threads", 0))


@hookimpl
def tubeway_validate_job(spec, settings):
    """``http``: see :func:`validate_http_payload`; ``callback``: ``{"url": "http(s)://...", "job" | "body", ...}``."""
    if spec.get("kind") == HTTP_KIND:
        validate_http_payload(spec.get("payload"), settings)
    else:
        _validate_callback(spec.get("payload"), settings)


@hookimpl
def tubeway_run_job(job, context):
    """``http``: make the call, the result is the answer; ``callback``: POST its body, the result is the status."""
    if job["kind"] == HTTP_KIND:
        return _run_http(job, context)
    return _run_callback(job, context)


@hookimpl(trylast=True)
def tubeway_callback_body(job):
    """The default body of a callback: the ended job's record, as the native API shows it."""
    return job


@hookimpl
def tubeway_retry_decision(job, error):
    """A call (or a redirect) to a host not allowed is not retried; otherwise the default."""
    return False if isinstance(error, HostNotAllowed) else None
