"""Checking an ``http`` job's payload (a Queue task API task) when it is submitted.

A payload is ``{"method", "url", "headers"?, "json"?, "query_string"?, "body"?,
"timeout"?, "sleep"?}``; :func:`validate_http_payload` refuses anything else with a
``ValidationError`` naming the field at fault. The URL must be http(s) with a host,
and one of ``http_allowed_hosts`` when that setting lists any (:func:`host_allowed`).
"""
import math
import re
from tubeway.core.errors import ValidationError
from tubeway.core.job import http_url_host

#: Longest ``timeout`` an ``http`` job may ask for, in seconds.
MAX_CALL_TIMEOUT = 86400
#: Longest ``sleep`` after the call, in microseconds.
MAX_SLEEP_MICROS = 3600 * 1000000
PAYLOAD_FIELDS = ("method", "url", "headers", "json", "query_string", "body", "timeout", "sleep")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SCALARS = (str, int, float, bool, type(None))


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


def _refuse(message, field="payload"):
    raise ValidationError(message, field)


def check_url(url, settings=None):
    """Refuse (ValidationError naming ``url``) a URL that is not http(s) with a host, or not allowed."""
    host = http_url_host(url)
    if host is None:
        _refuse("'url' must be an http or https URL", "url")
    if not host_allowed(host, getattr(settings, "http_allowed_hosts", None)):
        _refuse(f"'url' host '{host}' is not in http_allowed_hosts", "url")


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
        _refuse("'method' must be an HTTP method token such as GET, POST or ACTION", "method")
    check_url(payload["url"], settings)
    check_headers(payload.get("headers"))
    _check_query(payload.get("query_string"))
    if payload.get("body") is not None and not isinstance(payload["body"], str):
        _refuse("'body' must be a string", "body")
    _check_numbers(payload)
