"""The Queue task API (API-NOTES section 1): ``POST /task`` and ``POST /fraction``.

``/task`` stores one ``http`` job; ``/fraction`` stores one ``fraction`` job, which
the fraction plugin splits into ``http`` leaves of ``gap`` ids each.

A task is an HTTP call to make later. ``worker`` names the queue (in the namespace
``queue``); ``delay`` (seconds) or else ``datetime`` (``YYYY-MM-DD HH:MM:SS``, UTC)
says when, neither meaning at once; ``method`` (any HTTP method token, sent
upper-cased), ``url``, ``headers``, one of ``json`` / ``query_string`` / ``body``,
``timeout`` and ``sleep`` say what. The ``http`` plugin makes the call and checks the
call's fields when the job is submitted. Errors are ``{"status": false, "message"}``
naming the field; success is ``{"status": true}``.

Other routes of this API (``/fraction``) reuse :func:`task_payload`, which checks a
task body and builds the job, and :class:`QueueHandler`, which stores it.
"""
import calendar
import datetime
import re

from tubeway.broker.http.base import ApiError, BaseHandler, routes_with_slash
from tubeway.broker.http.native import normalize_jobs
from tubeway.core.job import MAX_NAME

NAMESPACE = "queue"
KIND = "http"
FRACTION_KIND = "fraction"
MAX_DELAY = 2**31 - 1
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
#: Task fields copied into the ``http`` payload as given, when present.
PASSED_FIELDS = ("headers", "timeout", "sleep")


def _present(body, field):
    """The field's value, or None when it is absent, null or ``""``."""
    value = body.get(field)
    return None if value is None or value == "" else value


def _empty(value):
    return value is None or (isinstance(value, (str, dict, list)) and not value)


def schedule(body):
    """The spec fields saying when a task runs: ``{"delay": s}``, ``{"run_at": epoch}``, or ``{}`` for at once.

    ``delay`` wins over ``datetime`` (which is then ignored); neither runs the task at
    once, as the original does. A bad value of the one used is a 400 naming it.
    """
    delay, when = _present(body, "delay"), _present(body, "datetime")
    if delay is not None:
        if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= MAX_DELAY:
            raise ApiError(400, f"'delay' must be an integer number of seconds from 0 to {MAX_DELAY}")
        return {"delay": delay}
    if when is None:
        return {}
    try:
        if not isinstance(when, str) or not _DATETIME.fullmatch(when):
            raise ValueError(when)
        moment = datetime.datetime.strptime(when, DATETIME_FORMAT)
    except ValueError:
        raise ApiError(400, "'datetime' must be a UTC time written YYYY-MM-DD HH:MM:SS") from None
    return {"run_at": float(calendar.timegm(moment.timetuple()))}


def call_payload(body):
    """The ``http`` job's payload: the call, with json > query_string > body applied."""
    method = body["method"]
    payload = {"method": method.upper() if isinstance(method, str) else method, "url": body["url"]}
    json_value, query, raw = body.get("json"), body.get("query_string"), body.get("body")
    if query is not None and not isinstance(query, dict):
        raise ApiError(400, "'query_string' must be an object of strings, numbers or arrays of them")
    if raw is not None and not isinstance(raw, str):
        raise ApiError(400, "'body' must be a string")
    if not _empty(json_value):
        payload["json"] = json_value
    elif query:
        payload["query_string"] = query
    elif raw:
        payload["body"] = raw
    payload.update({field: body[field] for field in PASSED_FIELDS if body.get(field) is not None})
    return payload


def task_payload(body, settings):
    """Check a task body (``/task`` fields; others are ignored) and build its job.

    Returns ``(spec_fields, http_payload)``: ``spec_fields`` are the native spec's
    ``namespace``, ``queue``, ``attempts`` and ``delay`` or ``run_at`` (add ``kind`` and
    ``payload``); ``http_payload`` is what the ``http`` kind runs. Raises a 400
    :class:`ApiError` naming the field. The call's own fields (URL scheme and host,
    method, headers, timeout, sleep) are checked when the job is normalized
    (:meth:`QueueHandler.submit`), by the ``http`` plugin.
    """
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    for field in ("worker", "url", "method"):
        if _present(body, field) is None:
            raise ApiError(400, f"'{field}' is required")
    worker = body["worker"]
    if not isinstance(worker, str) or len(worker) > MAX_NAME:
        raise ApiError(400, f"'worker' must be a string of at most {MAX_NAME} characters")
    spec = {"namespace": NAMESPACE, "queue": worker,
            "attempts": getattr(settings, "queue_max_attempts", 1), **schedule(body)}
    return spec, call_payload(body)


class QueueHandler(BaseHandler):
    """Base of the Queue task API's handlers: its error format, and storing a job."""

    def write_error_body(self, status, message, **extra):
        self.reply({"status": False, "message": message})

    async def submit(self, spec):
        """Normalize ``spec`` (the kind's plugin checks it: 400 naming the field) and store it; returns its id."""
        spec = normalize_jobs([spec], self.plugins, self.config, batch=False)[0]
        return (await self.broker.submit([spec]))["ids"][0]


class TaskHandler(QueueHandler):
    """``POST /task``: one ``http`` job in the queue ``worker``."""

    async def post(self):
        spec, payload = task_payload(self.json_body(), self.config)
        await self.submit({**spec, "kind": KIND, "payload": payload})
        self.reply({"status": True})


class FractionHandler(QueueHandler):
    """``POST /fraction``: a task plus ``min``, ``max`` and ``gap``, as one ``fraction`` job."""

    async def post(self):
        body = self.json_body()
        spec, task = task_payload(body, self.config)
        # The task is checked as the http job each leaf will be (scheme, host, headers, ...).
        normalize_jobs([{**spec, "kind": KIND, "payload": task}], self.plugins, self.config, batch=False)
        bounds = {field: body.get(field) for field in ("min", "max", "gap")}
        await self.submit({**spec, "kind": FRACTION_KIND, "payload": {"task": task, **bounds}})
        self.reply({"status": True})


def routes():
    """The Queue task API's Tornado rules."""
    return routes_with_slash([(r"/task", TaskHandler), (r"/fraction", FractionHandler)])
