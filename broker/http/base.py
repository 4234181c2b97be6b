"""What every HTTP handler of the front end shares: body limits, JSON, auth, errors.

Each dialect subclasses :class:`BaseHandler` and overrides
:meth:`BaseHandler.write_error_body` to give errors its own shape. Handlers
raise :class:`ApiError` (or let a :mod:`tubeway.core.errors` exception escape);
:meth:`BaseHandler.describe_error` turns either into a status and a message.
"""
import logging
import re
import sys

import orjson
import tornado.web
from tornado import httputil

from tubeway.broker.http.auth import authorize
from tubeway.core.errors import (
    BrokerUnavailable, JobConflict, JobNotFound, TubewayError, ValidationError,
)

log = logging.getLogger("tubeway.http")

DEFAULT_MAX_BODY = 16 * 1024 * 1024
#: JSON nested deeper than this is refused (orjson's own limit is 1024).
MAX_JSON_DEPTH = 64
#: Past the body limit, read and discard this much more before answering 413, so
#: that clients that send the whole body before reading still get the answer.
DRAIN_BYTES = 64 * 1024 * 1024
MAX_ID_LENGTH = 200
_DIGITS = re.compile(r"[0-9]{1,19}")


class ApiError(tornado.web.HTTPError):
    """An error answered to the client: a status, a message and extra body fields."""

    def __init__(self, status, message, **extra):
        super().__init__(status, reason=httputil.responses.get(status, "Error"))
        self.message = message
        self.extra = extra


def slash_optional(pattern):
    """The route pattern also matching a trailing slash: ``/jobs`` -> ``/jobs/?$``."""
    pattern = pattern[:-1] if pattern.endswith("$") else pattern
    if pattern.endswith("/?") or pattern.endswith("/"):
        return pattern + "$"
    return pattern + "/?$"


def routes_with_slash(rules):
    """Apply :func:`slash_optional` to the pattern of each ``(pattern, handler[, kwargs])`` tuple."""
    return [(slash_optional(rule[0]), *rule[1:]) if isinstance(rule, (tuple, list)) else rule
            for rule in rules]


def json_depth_ok(value, limit=MAX_JSON_DEPTH):
    """True when ``value`` nests arrays and objects at most ``limit`` deep."""
    level, depth = [value] if type(value) is dict or type(value) is list else [], 0
    while level:  # one level of containers at a time: no (item, depth) pair per node
        depth += 1
        if depth > limit:
            return False
        below = []
        for item in level:
            children = item.values() if type(item) is dict else item if type(item) is list else ()
            below.extend([child for child in children if type(child) is dict or type(child) is list])
        level = below
    return True


def parse_count(text, name, maximum=2**31 - 1, minimum=0):
    """Parse a non-negative integer given as text (header, query); 400 naming ``name`` if not one."""
    text = text.strip()
    if not _DIGITS.fullmatch(text) or not minimum <= int(text) <= maximum:
        raise ApiError(400, f"{name} must be an integer from {minimum} to {maximum}")
    return int(text)


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """The base of every Tubeway handler (dialects and plugin routes).

    The body is streamed in so that its size is checked as it arrives; auth runs
    in :meth:`prepare`. A refused request (401, 413) is answered once its body has
    been read and discarded, so that every client sees the answer. A subclass that
    overrides :meth:`prepare` or :meth:`data_received` must call the base method.
    """

    #: Methods answered without authentication (``GET`` of ``/healthz``).
    open_methods = frozenset()

    def initialize(self):
        self._chunks = []
        self._received = 0
        self._refusal = None

    @property
    def config(self):
        """The Tubeway settings (``self.settings`` is Tornado's own dict)."""
        return self.application.config

    @property
    def broker(self):
        """The :class:`~tubeway.core.client.AsyncBrokerClient` of this process."""
        return self.application.client

    @property
    def plugins(self):
        """The plugin manager."""
        return self.application.plugins

    # -- request intake ------------------------------------------------------------

    async def prepare(self):
        limit = self.application.max_body_size
        connection = self.request.connection
        if hasattr(connection, "set_max_body_size"):
            # Every size check happens here and in data_received, so that the
            # client gets a 413 rather than Tornado dropping the connection.
            connection.set_max_body_size(sys.maxsize)
        if self.request.method not in self.open_methods and not await authorize(self):
            self._refuse(401, "authentication required: send Authorization: Bearer <token>")
        length = self._content_length()
        if length is not None and length > limit:
            self._refuse(413, f"request body larger than {limit} bytes")
        early = self.request.headers.get("Expect", "").lower() == "100-continue"
        if self._refusal and (early or (length or 0) > limit + self.application.drain_bytes):
            self._send_refusal()

    def data_received(self, chunk):
        self._received += len(chunk)
        limit = self.application.max_body_size
        if self._refusal is None and self._received > limit:
            self._chunks = []
            self._refuse(413, f"request body larger than {limit} bytes")
        if self._refusal is None:
            self._chunks.append(chunk)
        elif self._received > limit + self.application.drain_bytes and not self._finished:
            self._send_refusal()

    def _content_length(self):
        try:
            return int(self.request.headers.get("Content-Length", ""))
        except ValueError:
            return None

    def _refuse(self, status, message):
        if self._refusal is None:
            self._refusal = (status, message)
            # Tornado calls the HTTP method once the body is in: answer instead.
            setattr(self, self.request.method.lower(), self._send_refusal)

    def _send_refusal(self, *args):
        if not self._finished:
            self.send_error(self._refusal[0], exc_info=(ApiError, ApiError(*self._refusal), None))

    def body_bytes(self):
        """The request body as bytes."""
        if len(self._chunks) != 1:
            self._chunks = [b"".join(self._chunks)]
        return self._chunks[0]

    def json_body(self, required=True):
        """The body parsed as JSON; an empty body is None unless ``required`` (then 400)."""
        raw = self.body_bytes()
        if not raw or raw.isspace():
            if required:
                raise ApiError(400, "the request body must be JSON")
            return None
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, f"malformed JSON: {exc}") from None
        if not json_depth_ok(value):
            raise ApiError(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        return value

    def header_count(self, name, default=None, maximum=2**31 - 1):
        """A header holding a non-negative integer (``default`` if absent); 400 naming it if not."""
        raw = self.request.headers.get(name)
        return default if raw is None else parse_count(raw, name, maximum)

    def job_id(self, value):
        """Check a job id taken from the path (404 for one no job can have)."""
        if not value or len(value) > MAX_ID_LENGTH:
            raise JobNotFound(f"no job with id '{value[:MAX_ID_LENGTH]}'")
        return value

    # -- responses -------------------------------------------------------------------

    def reply(self, data, status=None):
        """Write ``data`` as the JSON response body."""
        if status is not None:
            self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.write(orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS))

    def write_error_body(self, status, message, **extra):
        """Write an error in this dialect's format; the native one is ``{"error", ...extra}``."""
        self.reply({"error": message, **extra})

    def describe_error(self, exc, status):
        """``(status, message, extra)`` for an exception that ended the request."""
        if isinstance(exc, ApiError):
            return exc.status_code, exc.message, exc.extra
        if isinstance(exc, ValidationError):
            extra = {"field": exc.field} if exc.index is None else {"index": exc.index, "field": exc.field}
            return 400, exc.message or "invalid request", extra
        for cls, code in ((JobNotFound, 404), (JobConflict, 409), (BrokerUnavailable, 503)):
            if isinstance(exc, cls):
                return code, exc.message or httputil.responses[code].lower(), {}
        if isinstance(exc, tornado.web.HTTPError):
            reason = exc.log_message if exc.status_code == 400 and exc.log_message else None
            return exc.status_code, reason or httputil.responses.get(exc.status_code, "error").lower(), {}
        if isinstance(exc, TubewayError):
            return 500, f"broker error: {exc.message}", {}
        return 500, "internal server error", {}

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        status, message, extra = self.describe_error(exc, status_code)
        self.set_status(status)
        if status == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="tubeway"')
        elif status == 405:
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        self.write_error_body(status, message, **extra)

    def allowed_methods(self):
        """The HTTP methods this handler answers (for a 405's ``Allow`` header)."""
        base = tornado.web.RequestHandler
        return [method for method in self.SUPPORTED_METHODS
                if getattr(type(self), method.lower(), None) is not getattr(base, method.lower(), None)]

    def log_exception(self, typ, value, tb):
        if isinstance(value, BrokerUnavailable):
            log.warning("%s: %s", self._request_summary(), value.message)
        elif isinstance(value, (ApiError, ValidationError, JobNotFound, JobConflict)):
            log.debug("%s: %s", self._request_summary(), value)
        else:
            super().log_exception(typ, value, tb)


class NotFoundHandler(BaseHandler):
    """Answers every path no route matches (after auth, so routes are not probed)."""

    def _not_found(self, *args):
        raise ApiError(404, f"no route for {self.request.method} {self.request.path}")

    get = post = put = patch = delete = head = options = _not_found
