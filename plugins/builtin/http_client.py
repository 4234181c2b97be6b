"""The one HTTP client of a worker process: every outgoing call goes through this module.

:func:`send` and :func:`post_json` use one ``requests.Session`` per process (created
on first use, again after a fork), whose connection pool keeps up to
:data:`POOL_SIZE` connections per host (more after :func:`size_pool`), so calls
reuse connections across jobs and threads. Cookies are never kept: one job's call
must not leak into another's. A network error or a timeout raises
:class:`CallFailed` (:class:`CallTimeout`); :func:`read_start` reads the start of a
streamed answer's body.

A call given ``allowed_hosts`` (the setting ``http_allowed_hosts``) reaches only
those hosts, on its first request and on every redirect hop: a hop to another host
raises :class:`HostNotAllowed` before anything is sent to it.
"""
import http.cookiejar
import os
import threading
import time
import urllib.request
from http import HTTPStatus
from urllib.parse import urljoin, urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from requests.sessions import SessionRedirectMixin
from requests.structures import CaseInsensitiveDict
from requests.utils import requote_uri
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from tubeway import __version__
from tubeway.plugins.builtin.http_task import host_allowed

#: Connections kept open per host by the shared session (and the most in use at once).
POOL_SIZE = 64
#: Characters of a failed answer's body quoted in the error.
ERROR_BODY_CHARS = 200
USER_AGENT = f"tubeway/{__version__}"
_CHUNK_BYTES = 16 * 1024

_lock = threading.Lock()
_session = None
_session_pid = None
_pool_size = POOL_SIZE
_REDIRECTS = SessionRedirectMixin()  # its redirect-target reading, shared with the session's


class CallFailed(Exception):
    """An outgoing HTTP call failed: a network error, or an answer that was not 2xx when one was required."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class CallTimeout(CallFailed):
    """An outgoing HTTP call took longer than its timeout (to connect, or to read)."""


class HostNotAllowed(CallFailed):
    """A call, or one of its redirects, is for a host not in ``http_allowed_hosts``; nothing was sent to it."""


def size_pool(connections):
    """Keep up to ``connections`` (at least :data:`POOL_SIZE`) per host in sessions created from now on."""
    global _pool_size
    _pool_size = max(POOL_SIZE, connections)


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
    # With trust_env, requests reads proxy, CA bundle and netrc settings from the
    # environment again on every call, a large share of its cost. Read the CA bundle
    # once here, and keep trust_env only where proxies or a netrc file need it.
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        client.verify = bundle
    client.trust_env = bool(urllib.request.getproxies()) or _netrc_exists()
    return client


def _netrc_exists():
    paths = [os.environ["NETRC"]] if os.environ.get("NETRC") else ["~/.netrc", "~/_netrc"]
    return any(os.path.exists(os.path.expanduser(path)) for path in paths)


def send(method, url, timeout, headers=None, params=None, data=None, json=None, require_ok=False, stream=False,
         allowed_hosts=None):
    """Make one HTTP call with the shared session and return the ``requests.Response``.

    ``timeout`` (seconds) bounds connecting and each read. ``json`` is encoded with
    orjson. Redirects are followed. A network error raises :class:`CallFailed`
    (:class:`CallTimeout` for a timeout); so does a non-2xx answer when
    ``require_ok`` is true. With ``stream`` the body is read by the caller, who must
    close the response. ``allowed_hosts`` (host patterns, see
    :func:`~tubeway.plugins.builtin.http_task.host_allowed`), when it lists any, is
    where the call and each of its redirects may go: else :class:`HostNotAllowed`.
    """
    if json is not None:
        data = orjson.dumps(json)
        headers = CaseInsensitiveDict(headers or {})
        headers.setdefault("Content-Type", "application/json")
    hooks = None
    if allowed_hosts:  # off the hot path unless the setting lists hosts
        _check_host(url, allowed_hosts)
        hooks = {"response": [_redirect_guard(allowed_hosts)]}
    client = session()
    try:
        if client.trust_env:  # proxies or netrc: requests reads them per call
            response = client.request(method, url, params=params, data=data, headers=headers,
                                      timeout=timeout, stream=stream, hooks=hooks)
        else:
            response = client.send(_prepare(client, method, url, headers, params, data, hooks), timeout=timeout,
                                   stream=stream, verify=client.verify, proxies={})
    except requests.Timeout as exc:
        raise CallTimeout(f"{method} {url} timed out after {_seconds(timeout)} s ({type(exc).__name__})") from exc
    except requests.RequestException as exc:
        raise CallFailed(f"{method} {url} failed: {type(exc).__name__}: {exc}") from exc
    if require_ok and not 200 <= response.status_code < 300:
        snippet = response.text[:ERROR_BODY_CHARS]
        raise CallFailed(f"{method} {url} answered {response.status_code} {response.reason}: {snippet}",
                         status=response.status_code)
    return response


def _check_host(url, allowed_hosts, redirected_from=None):
    """Raise :class:`HostNotAllowed` unless every reading of ``url``'s host is allowed."""
    for host in _hosts(url):
        if host_allowed(host, allowed_hosts):
            continue
        if redirected_from is None:
            raise HostNotAllowed(f"host '{host}' is not in http_allowed_hosts")
        raise HostNotAllowed(f"{redirected_from} redirected to {url}, whose host '{host}' is not in "
                             "http_allowed_hosts; not followed")


def _hosts(url):
    # Both parsers' readings: the check must hold for the host urllib3 will connect to.
    try:
        connected = parse_url(url).host or ""
    except LocationParseError:
        connected = ""
    return {(urlsplit(url).hostname or "").lower(), connected.strip("[]").lower()}


def _redirect_target(response):
    """The absolute URL requests follows a redirect answer to (as ``resolve_redirects`` computes it), or None."""
    target = _REDIRECTS.get_redirect_target(response)
    if not target:
        return None
    if target.startswith("//"):
        target = f"{urlsplit(response.url).scheme}:{target}"
    if not urlsplit(target).netloc:
        return urljoin(response.url, requote_uri(target))
    return requote_uri(target)


def _redirect_guard(allowed_hosts):
    """A response hook refusing a redirect to a host not allowed, before requests follows it."""
    def guard(response, **_):
        target = _redirect_target(response)
        if target is not None:
            try:
                _check_host(target, allowed_hosts, redirected_from=response.url)
            except HostNotAllowed:
                response.close()
                raise
        return response
    return guard


def _prepare(client, method, url, headers, params, data, hooks=None):
    """The request ``Session.request`` would prepare, less its merging of per-call settings we never use.

    The session has no auth, params, hooks or stored cookies of its own, so merging
    comes down to its headers under the call's (a header set to None is dropped).
    """
    merged = CaseInsensitiveDict(client.headers)
    if headers:
        merged.update(headers)
        for name in [name for name, value in merged.items() if value is None]:
            del merged[name]
    prepared = requests.PreparedRequest()
    prepared.prepare(method=method.upper(), url=url, headers=merged, data=data, params=params, hooks=hooks)
    return prepared


def _seconds(timeout):
    return f"{timeout:g}" if isinstance(timeout, (int, float)) else str(timeout)


def post_json(url, body, timeout, headers=None, allowed_hosts=None):
    """POST ``body`` as JSON; returns the response, raises :class:`CallFailed` unless it is 2xx."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    return send("POST", url, timeout, headers=headers, data=orjson.dumps(body), require_ok=True,
                allowed_hosts=allowed_hosts)


def read_start(response, limit, timeout, method, url):
    """The first ``limit`` bytes of a streamed body and whether there was more.

    The body must arrive within ``timeout`` seconds, else :class:`CallTimeout`; a
    network error while reading raises :class:`CallFailed`.
    """
    content, deadline = bytearray(), time.monotonic() + timeout
    try:
        for chunk in response.iter_content(_CHUNK_BYTES):
            if time.monotonic() > deadline:
                raise CallTimeout(f"{method} {url} timed out after {timeout:g} s reading the answer")
            content += chunk
            if len(content) > limit:
                return bytes(content[:limit]), True
    except requests.RequestException as exc:
        kind = CallTimeout if isinstance(exc, requests.Timeout) else CallFailed
        raise kind(f"{method} {url} failed reading the answer: {type(exc).__name__}: {exc}") from exc
    return bytes(content), False


def reason_phrase(response):
    """The answer's reason phrase, else the standard one for its status, else ``Server Error``."""
    if response.reason:
        return response.reason
    try:
        return HTTPStatus(response.status_code).phrase
    except ValueError:
        return "Server Error"
