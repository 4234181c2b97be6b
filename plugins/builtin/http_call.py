"""Built-in plugin ``callback``, and the one pooled HTTP client every outgoing call shares.

:func:`send` and :func:`post_json` use one ``requests.Session`` per process (created
on first use, again after a fork), whose connection pool keeps up to
:data:`POOL_SIZE` connections per host, so calls reuse connections across jobs and
threads. Cookies are never kept: one job's call must not leak into another's.

The ``callback`` kind tells a job's ``callback_url`` that the job ended: the broker
creates a ``callback`` job (``settings.callback_attempts`` attempts, exponential
backoff) with payload ``{"url", "body"}``; the body is POSTed as JSON, and a
network error or a non-2xx answer fails the attempt so it is retried.
"""
import http.cookiejar
import os
import threading

import orjson
import requests
from requests.adapters import HTTPAdapter

from tubeway import __version__, hookimpl
from tubeway.core.errors import ValidationError
from tubeway.plugins.hookspecs import JobKind

KIND = "callback"
#: Connections kept open per host by the shared session (and the most in use at once).
POOL_SIZE = 64
#: Characters of a failed answer's body quoted in the error.
ERROR_BODY_CHARS = 200
USER_AGENT = f"tubeway/{__version__}"
DEFAULT_TIMEOUT = 30.0

_lock = threading.Lock()
_session = None
_session_pid = None


class CallFailed(Exception):
    """An outgoing HTTP call failed: a network error, or an answer that was not 2xx when one was required."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def session():
    """This process's shared ``requests.Session`` (pooled, cookie-less)."""
    global _session, _session_pid
    with _lock:
        if _session is None or _session_pid != os.getpid():
            _session, _session_pid = _new_session(), os.getpid()
        return _session


def _new_session():
    client = requests.Session()
    adapter = HTTPAdapter(pool_connections=POOL_SIZE, pool_maxsize=POOL_SIZE, pool_block=False)
    client.mount("http://", adapter)
    client.mount("https://", adapter)
    client.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    client.headers["User-Agent"] = USER_AGENT
    return client


def send(method, url, timeout, headers=None, params=None, data=None, json=None, require_ok=False):
    """Make one HTTP call with the shared session and return the ``requests.Response``.

    ``timeout`` (seconds) bounds connecting and each read. ``json`` is encoded with
    orjson. A network error raises :class:`CallFailed`; so does a non-2xx answer when
    ``require_ok`` is true.
    """
    headers = dict(headers or {})
    if json is not None:
        data = orjson.dumps(json)
        headers.setdefault("Content-Type", "application/json")
    try:
        response = session().request(method, url, params=params, data=data, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise CallFailed(f"{method} {url} failed: {type(exc).__name__}: {exc}") from exc
    if require_ok and not 200 <= response.status_code < 300:
        snippet = response.text[:ERROR_BODY_CHARS]
        raise CallFailed(f"{method} {url} answered {response.status_code} {response.reason}: {snippet}",
                         status=response.status_code)
    return response


def post_json(url, body, timeout, headers=None):
    """POST ``body`` as JSON; returns the response, raises :class:`CallFailed` unless it is 2xx."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    return send("POST", url, timeout, headers=headers, data=orjson.dumps(body), require_ok=True)


@hookimpl
def tubeway_job_kinds():
    """The ``callback`` kind."""
    return [JobKind(KIND, True, "POSTs a finished job to its callback URL, retried on failure.")]


@hookimpl
def tubeway_validate_job(spec):
    """A callback's payload is ``{"url": "http(s)://...", "body": any, "headers"?: {str: str}}``."""
    payload = spec.get("payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("url"), str) \
            or not payload["url"].startswith(("http://", "https://")):
        raise ValidationError("a callback job's payload needs an http(s) 'url'", "payload")
    headers = payload.get("headers")
    if headers is not None and (not isinstance(headers, dict)
                                or not all(isinstance(v, str) for v in headers.values())):
        raise ValidationError("a callback job's 'headers' must map names to strings", "payload")


@hookimpl
def tubeway_run_job(job, context):
    """POST the payload's body to its URL; the result is the answer's status code."""
    payload = job["payload"]
    timeout = getattr(context.settings, "queue_default_timeout", DEFAULT_TIMEOUT)
    remaining = context.remaining()
    if remaining is not None:
        timeout = max(0.001, min(timeout, remaining))
    response = post_json(payload["url"], payload.get("body"), timeout, headers=payload.get("headers"))
    return {"status": response.status_code}
