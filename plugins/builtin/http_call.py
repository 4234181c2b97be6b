"""Built-in plugin ``callback``: the kinds ``http`` and ``callback``, and the one pooled HTTP client.

:func:`send` and :func:`post_json` use one ``requests.Session`` per process (created
on first use, again after a fork), whose connection pool keeps up to
:data:`POOL_SIZE` connections per host (more when ``http_concurrency`` asks for
more), so calls reuse connections across jobs and threads. Cookies are never kept:
one job's call must not leak into another's.

The ``http`` kind makes the call its payload describes (the Queue task API's tasks):
``{"method", "url", "headers"?, "json"?, "query_string"?, "body"?, "timeout"?, "sleep"?}``.
A non-empty ``json`` wins over ``query_string``, which wins over ``body``;
``query_string`` becomes the URL's query for GET and HEAD, else a form-encoded body.
The result is ``{"status", "headers", "body" (first 64 KiB as text), "truncated",
"duration"}``; a network error, a timeout or a 5xx answer fails the attempt (it is
retried while attempts remain); any other answer is done. ``sleep`` microseconds
pause the job's slot after the call. The setting ``http_allowed_hosts`` restricts the
hosts called.

The ``callback`` kind tells a job's ``callback_url`` that the job ended: the broker
creates a ``callback`` job (``settings.callback_attempts`` attempts, exponential
backoff) with payload ``{"url", "body"}``; the body is POSTed as JSON, and a
network error or a non-2xx answer fails the attempt so it is retried.
"""
import http.cookiejar
import math
import os
import re
import threading
import time
from http import HTTPStatus
from urllib.parse import urlencode, urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from tubeway import __version__, hookimpl
from tubeway.core.errors import ValidationError
from tubeway.plugins.hookspecs import JobKind

KIND = "callback"
HTTP_KIND = "http"
#: Connections kept open per host by the shared session (and the most in use at once).
POOL_SIZE = 64
#: Characters of a failed answer's body quoted in the error.
ERROR_BODY_CHARS = 200
USER_AGENT = f"tubeway/{__version__}"
DEFAULT_TIMEOUT = 30.0
#: ``http`` jobs one worker process runs at once when the settings do not say (``http_concurrency``).
DEFAULT_CONCURRENCY = 16
#: Bytes of an ``http`` job's answer kept in its result.
RESULT_BODY_BYTES = 64 * 1024
MAX_CALL_TIMEOUT = 86400
MAX_SLEEP_MICROS = 3600 * 1000000
PAYLOAD_FIELDS = ("method", "url", "headers", "json", "query_string", "body", "timeout", "sleep")
URL_QUERY_METHODS = ("GET", "HEAD")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SCALARS = (str, int, float, bool, type(None))

_lock = threading.Lock()
_session = None
_session_pid = None
_pool_size = POOL_SIZE


class CallFailed(Exception):
    """An outgoing HTTP call failed: a network error, or an answer that was not 2xx when one was required."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class CallTimeout(CallFailed):
    """An outgoing HTTP call took longer than its timeout (to connect, or to read)."""


class HostNotAllowed(CallFailed):
    """An ``http`` job's host is not in ``http_allowed_hosts`` (the setting changed since it was submitted)."""


def session():
    """This process's shared ``requests.Session`` (pooled, cookie-less)."""
    global _session, _session_pid
    with _lock:
        if _session is None or _session_pid != os.getpid():
            _session, _session_pid = _new_session(), os.getpid()
        return _session


def _new_session():
    client = requests.Session()
    adapter = HTTPAdapter(pool_connections=POOL_SIZE, pool_maxsize=_pool_size, pool_block=False)
    client.mount("http://", adapter)
    client.mount("https://", adapter)
    client.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    client.headers["User-Agent"] = USER_AGENT
    return client


def send(method, url, timeout, headers=None, params=None, data=None, json=None, require_ok=False, stream=False):
    """Make one HTTP call with the shared session and return the ``requests.Response``.

    ``timeout`` (seconds) bounds connecting and each read. ``json`` is encoded with
    orjson. A network error raises :class:`CallFailed` (:class:`CallTimeout` for a
    timeout); so does a non-2xx answer when ``require_ok`` is true. With ``stream``
    the body is read by the caller, who must close the response.
    """
    headers = CaseInsensitiveDict(headers or {})
    if json is not None:
        data = orjson.dumps(json)
        headers.setdefault("Content-Type", "application/json")
    try:
        response = session().request(method, url, params=params, data=data, headers=headers,
                                     timeout=timeout, stream=stream)
    except requests.Timeout as exc:
        raise CallTimeout(f"{method} {url} timed out after {_seconds(timeout)} s ({type(exc).__name__})") from exc
    except requests.RequestException as exc:
        raise CallFailed(f"{method} {url} failed: {type(exc).__name__}: {exc}") from exc
    if require_ok and not 200 <= response.status_code < 300:
        snippet = response.text[:ERROR_BODY_CHARS]
        raise CallFailed(f"{method} {url} answered {response.status_code} {response.reason}: {snippet}",
                         status=response.status_code)
    return response


def _seconds(timeout):
    return f"{timeout:g}" if isinstance(timeout, (int, float)) else str(timeout)


def post_json(url, body, timeout, headers=None):
    """POST ``body`` as JSON; returns the response, raises :class:`CallFailed` unless it is 2xx."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    return send("POST", url, timeout, headers=headers, data=orjson.dumps(body), require_ok=True)


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


def _read_start(response, limit, timeout, method, url):
    """The first ``limit`` bytes of the body and whether there was more; the body must arrive within ``timeout``."""
    content, deadline = bytearray(), time.monotonic() + timeout
    try:
        for chunk in response.iter_content(16 * 1024):
            if time.monotonic() > deadline:
                raise CallTimeout(f"{method} {url} timed out after {timeout:g} s reading the answer")
            content += chunk
            if len(content) > limit:
                return bytes(content[:limit]), True
    except requests.RequestException as exc:
        kind = CallTimeout if isinstance(exc, requests.Timeout) else CallFailed
        raise kind(f"{method} {url} failed reading the answer: {type(exc).__name__}: {exc}") from exc
    return bytes(content), False


def _reason(response):
    if response.reason:
        return response.reason
    try:
        return HTTPStatus(response.status_code).phrase
    except ValueError:
        return "Server Error"


def call_http(payload, timeout):
    """Make the call an ``http`` payload describes and return the job's result.

    Raises :class:`CallFailed` on a network error or a 5xx answer (:class:`CallTimeout`
    when connecting, waiting for the answer or reading it takes over ``timeout``).
    """
    method, url, headers, data, json_value = request_parts(payload)
    started = time.perf_counter()
    response = send(method, url, timeout, headers=headers, data=data, json=json_value, stream=True)
    try:
        content, truncated = _read_start(response, RESULT_BODY_BYTES, timeout, method, url)
    finally:
        response.close()
    text = content.decode("utf-8", errors="replace")
    if response.status_code >= 500:
        snippet = text[:ERROR_BODY_CHARS]
        raise CallFailed(f"HTTP {response.status_code} {_reason(response)}" + (f": {snippet}" if snippet else ""),
                         status=response.status_code)
    return {"status": response.status_code, "headers": dict(response.headers), "body": text,
            "truncated": truncated, "duration": round(time.perf_counter() - started, 6)}


def host_allowed(host, patterns):
    """True when ``host`` matches one of ``patterns`` (names, or ``*.example.com`` for subdomains); none: any."""
    if not patterns:
        return True
    host = host.lower().rstrip(".")
    for pattern in patterns:
        pattern = pattern.lower().strip("[]").rstrip(".")
        if pattern.startswith("*.") and host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
            return True
        if host == pattern:
            return True
    return False


def _call_timeout(value, context):
    timeout = value or getattr(context.settings, "queue_default_timeout", DEFAULT_TIMEOUT)
    remaining = context.remaining()
    return timeout if remaining is None else max(0.001, min(timeout, remaining))


def _run_http(job, context):
    payload = job["payload"]
    host = urlsplit(payload["url"]).hostname or ""
    if not host_allowed(host, getattr(context.settings, "http_allowed_hosts", None)):
        raise HostNotAllowed(f"host '{host}' is not in http_allowed_hosts")
    try:
        result = call_http(payload, _call_timeout(payload.get("timeout"), context))
        context.log(f"{payload['method'].upper()} {payload['url']} -> {result['status']} "
                    f"in {result['duration']:.3f} s")
        return result
    finally:
        sleep = payload.get("sleep")
        if sleep:
            context.cancelled.wait(sleep / 1e6)  # wakes early when the job is cancelled


def _run_callback(job, context):
    payload = job["payload"]
    timeout = _call_timeout(None, context)
    response = post_json(payload["url"], payload.get("body"), timeout, headers=payload.get("headers"))
    return {"status": response.status_code}


# -- validation --------------------------------------------------------------------------

def _refuse(message, field="payload"):
    raise ValidationError(message, field)


def check_url(url, settings=None):
    """Refuse (ValidationError naming ``url``) a URL that is not http(s) with a host, or not allowed."""
    if not isinstance(url, str) or any(ord(c) <= 32 or c == "\x7f" for c in url):
        _refuse("'url' must be an http or https URL", "url")
    parts = urlsplit(url)
    try:
        parts.port
    except ValueError:
        _refuse("'url' must be an http or https URL", "url")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        _refuse("'url' must be an http or https URL", "url")
    if not host_allowed(parts.hostname, getattr(settings, "http_allowed_hosts", None)):
        _refuse(f"'url' host '{parts.hostname}' is not in http_allowed_hosts", "url")


def check_headers(headers):
    """Refuse headers that are not an object of header names to single-line strings."""
    if headers is None:
        return
    if not isinstance(headers, dict) or not all(
            _TOKEN.fullmatch(name) and isinstance(value, str) and not any(c in value for c in "\r\n\0")
            for name, value in headers.items()):
        _refuse("'headers' must be an object mapping header names to strings", "headers")


def _check_query(query):
    def scalar(value):
        return isinstance(value, _SCALARS) and not (isinstance(value, float) and not math.isfinite(value))

    if query is not None and not (isinstance(query, dict) and all(
            scalar(v) or (isinstance(v, list) and all(scalar(i) for i in v)) for v in query.values())):
        _refuse("'query_string' must be an object of strings, numbers or arrays of them", "query_string")


def _check_numbers(payload):
    timeout, sleep = payload.get("timeout"), payload.get("sleep")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not 0 < timeout <= MAX_CALL_TIMEOUT):
        _refuse(f"'timeout' must be a number of seconds above 0 and at most {MAX_CALL_TIMEOUT}", "timeout")
    if sleep is not None and (isinstance(sleep, bool) or not isinstance(sleep, int)
                              or not 0 <= sleep <= MAX_SLEEP_MICROS):
        _refuse(f"'sleep' must be an integer number of microseconds from 0 to {MAX_SLEEP_MICROS}", "sleep")


def validate_http_payload(payload, settings=None):
    """Check an ``http`` job's payload; raises ValidationError naming the field."""
    if not isinstance(payload, dict):
        _refuse("an http job's payload must be an object with 'method' and 'url'")
    unknown = sorted(set(payload) - set(PAYLOAD_FIELDS))
    if unknown:
        _refuse(f"unknown field '{unknown[0]}' in an http job's payload", unknown[0])
    for field in ("method", "url"):
        if payload.get(field) in (None, ""):
            _refuse(f"'{field}' is required", field)
    if not isinstance(payload["method"], str) or not _TOKEN.fullmatch(payload["method"]):
        _refuse("'method' must be an HTTP method such as GET or POST", "method")
    check_url(payload["url"], settings)
    check_headers(payload.get("headers"))
    _check_query(payload.get("query_string"))
    if payload.get("body") is not None and not isinstance(payload["body"], str):
        _refuse("'body' must be a string", "body")
    _check_numbers(payload)


def _validate_callback(payload):
    if not isinstance(payload, dict) or not isinstance(payload.get("url"), str) \
            or not payload["url"].startswith(("http://", "https://")):
        _refuse("a callback job's payload needs an http(s) 'url'")
    headers = payload.get("headers")
    if headers is not None and (not isinstance(headers, dict)
                                or not all(isinstance(v, str) for v in headers.values())):
        _refuse("a callback job's 'headers' must map names to strings")


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
    global _pool_size
    concurrency = getattr(settings, "http_concurrency", None) or DEFAULT_CONCURRENCY
    wanted = concurrency + getattr(settings, "worker_threads", 0)
    _pool_size = max(POOL_SIZE, wanted)


@hookimpl
def tubeway_validate_job(spec, settings):
    """``http``: see :func:`validate_http_payload`; ``callback``: ``{"url": "http(s)://...", "body", "headers"?}``."""
    if spec.get("kind") == HTTP_KIND:
        validate_http_payload(spec.get("payload"), settings)
    else:
        _validate_callback(spec.get("payload"))


@hookimpl
def tubeway_run_job(job, context):
    """``http``: make the call, the result is the answer; ``callback``: POST the body, the result is the status."""
    if job["kind"] == HTTP_KIND:
        return _run_http(job, context)
    return _run_callback(job, context)


@hookimpl
def tubeway_retry_decision(job, error):
    """A call to a host no longer allowed is not retried; otherwise the default."""
    return False if isinstance(error, HostNotAllowed) else None
