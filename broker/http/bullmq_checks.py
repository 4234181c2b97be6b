"""The BullMQ proxy API's checks, with the original's messages: queue names, jobs and their opts, list
paging, and worker registrations.

Pure functions, no Tornado. They follow taskforcesh/bullmq-proxy's ``queue.validators.ts`` and
``workers.validators.ts`` as API-NOTES section 5 keeps them; :class:`BullError` carries the
plain-text message and status. Job ids: see :func:`unique_key`.
"""
import math

from tubeway.core.job import MAX_KEEP, MAX_NAME, http_url_host, storable

MIN_QUEUE_NAME = 3
MAX_QUEUE_NAME = 100
MAX_PRIORITY = 2_097_152
#: Largest delay (ms) taken: JavaScript's largest safe integer.
MAX_MS = 2**53 - 1
MAX_ATTEMPTS = 10000
BACKOFF_TYPES = ("fixed", "linear", "exponential")
JOB_FIELDS = frozenset({"name", "data", "opts"})
OPT_FIELDS = frozenset({"delay", "lifo", "priority", "attempts", "backoff", "jobId", "removeOnComplete",
                        "removeOnFail"})
BACKOFF_FIELDS = frozenset({"type", "delay"})
#: Statuses of ``GET /queues/<q>/jobs``, in the order of the default listing.
STATUSES = ("waiting", "active", "delayed", "prioritized", "completed", "failed")


class BullError(Exception):
    """A request the BullMQ API refuses: ``status`` and the plain-text ``message``."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.message = message
        self.status = status


def js(value):
    """``value`` as JavaScript's ``${value}`` writes it, so messages read as the original's."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value).replace("inf", "Infinity")
    if isinstance(value, list):
        return ",".join("" if item is None else js(item) for item in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def _is_int(value):
    """JavaScript's ``Number.isInteger``."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def falsy(value):
    """JavaScript's falsiness for JSON values."""
    return value is None or value is False or value == "" or (is_number(value) and value == 0)


def js_length(text):
    """A string's length as JavaScript counts it (UTF-16 code units)."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def check_queue_name(name):
    """``validateQueueName``: 3 to 100 characters."""
    if js_length(name) < MIN_QUEUE_NAME:
        raise BullError(f"queue name must be at least {MIN_QUEUE_NAME} characters long")
    if js_length(name) > MAX_QUEUE_NAME:
        raise BullError(f"queue name must be at most {MAX_QUEUE_NAME} characters long")
    if not storable(name):
        raise BullError("queue name must not contain the NUL character")
    return name


def unique_key(queue, job_id):
    """The broker's ``unique_key`` for a client-chosen id: scoped to its queue, as BullMQ ids are."""
    return f"{len(queue)}:{queue}:{job_id}"


def max_job_id(queue):
    """The longest ``jobId`` storage takes for ``queue``."""
    return MAX_NAME - len(unique_key(queue, ""))


def check_job(job, queue):
    """``validateJob``: ``name`` and ``data`` required, nothing else but ``opts``, the opts checked."""
    if not isinstance(job, dict):
        raise BullError("name is required")
    if falsy(job.get("name")):
        raise BullError("name is required")
    if job.get("data") is None:
        raise BullError("data is required")
    for field in job:
        if field not in JOB_FIELDS:
            raise BullError(f"Unexpected field: {field}")
    name = job["name"]
    if not isinstance(name, str):
        raise BullError(f"Invalid name {js(name)}, must be a string")
    if len(name) > MAX_NAME or not storable(name):
        raise BullError(f"Invalid name, must be at most {MAX_NAME} characters (no NUL)")
    opts = job.get("opts")
    if opts is not None:
        if not isinstance(opts, dict):
            raise BullError(f"Invalid opts {js(opts)}, must be an object")
        check_opts(opts, queue)


def check_opts(opts, queue):
    """``validateJobOpts``, with ``linear`` backoff, a number backoff and the remove options checked too."""
    for field in opts:
        if field not in OPT_FIELDS:
            raise BullError(f"Unexpected field: opts.{field}")
    delay = opts.get("delay")
    if not falsy(delay) and (not _is_int(delay) or delay < 0 or delay > MAX_MS) or delay is False:
        raise BullError(f"Invalid delay {js(delay)}")
    if "priority" in opts:
        priority = opts["priority"]
        if not _is_int(priority) or priority <= 0 or priority > MAX_PRIORITY:
            raise BullError(f"Invalid priority {js(priority)}")
    attempts = opts.get("attempts")
    if not falsy(attempts) and (not _is_int(attempts) or attempts < 0 or attempts > MAX_ATTEMPTS) \
            or attempts is False:
        raise BullError(f"Invalid attempts {js(attempts)}")
    if given_backoff(opts.get("backoff")) is not None:
        check_backoff(opts["backoff"])
    if "lifo" in opts and not isinstance(opts["lifo"], bool):
        raise BullError(f"Invalid lifo {js(opts['lifo'])}, must be a boolean")
    job_id = opts.get("jobId")
    if not falsy(job_id):
        if not isinstance(job_id, str):
            raise BullError(f"Invalid jobId {js(job_id)}, must be a string")
        if str(parse_int(job_id)) == job_id:
            raise BullError("Custom Ids cannot be integers")
        if len(job_id) > max_job_id(queue) or not storable(job_id):
            raise BullError(f"Invalid jobId, must be at most {max_job_id(queue)} characters (no NUL)")
    for field in ("removeOnComplete", "removeOnFail"):
        if field in opts:
            keep_count(opts[field], field)


def given_backoff(backoff):
    """The backoff when one is given: the original skips a falsy one, except the number 0 (fixed, no wait)."""
    return backoff if is_number(backoff) or not falsy(backoff) else None


def check_backoff(backoff):
    """``validateBackoffOpts``: a number of ms, or ``{type: fixed|linear|exponential, delay?}``."""
    if is_number(backoff):
        if backoff < 0 or not math.isfinite(backoff) or backoff > MAX_MS:
            raise BullError(f"Invalid backoff delay {js(backoff)}, must be greater than 0")
        return
    if not isinstance(backoff, dict):
        raise BullError(f"Invalid backoff {js(backoff)}, must be a number or an object")
    if not backoff:
        raise BullError("Invalid backoff {}, must be a number or an object with at least the type field")
    for field in backoff:
        if field not in BACKOFF_FIELDS:
            raise BullError(f"Unexpected field: opts.{field}")
    kind, delay = backoff.get("type"), backoff.get("delay")
    if kind not in BACKOFF_TYPES:
        if "delay" in backoff:
            raise BullError(f'Invalid backoff type {js(kind) if "type" in backoff else "undefined"}, '
                            'must be "fixed" or "exponential" if delay is provided')
        raise BullError(f'Invalid backoff type {js(kind) if "type" in backoff else "undefined"}, '
                        'must be "fixed", "linear" or "exponential"')
    if "delay" in backoff and not is_number(delay):
        raise BullError(f"Invalid backoff delay {js(delay)}, must be a number")
    if is_number(delay) and (delay < 0 or not math.isfinite(delay) or delay > MAX_MS):
        raise BullError(f"Invalid backoff delay {js(delay)}, must be greater than 0")


def keep_count(value, field):
    """``removeOnComplete`` / ``removeOnFail`` as the broker's ``keep_done`` / ``keep_failed`` (None: keep all)."""
    if value is None or value is False:
        return None
    if value is True:
        return 0
    if isinstance(value, dict) and set(value) <= {"count"} and "count" in value:
        value = value["count"]
    if not _is_int(value) or not 0 <= value <= MAX_KEEP:
        raise BullError(f"Invalid {field} {js(value)}, must be a boolean or a number of jobs to keep "
                        f"(0 to {MAX_KEEP})")
    return int(value)


def parse_int(text):
    """JavaScript's ``parseInt(text, 10)``: leading blanks, a sign, digits; None when there are none (NaN)."""
    text = text.lstrip(" \t\n\r\v\f")
    sign = ""
    if text[:1] in "+-" and text:
        sign, text = text[0], text[1:]
    digits = ""
    for char in text:
        if not "0" <= char <= "9":
            break
        digits += char
    if not digits:
        return None
    return int(sign + digits) if sign == "-" else int(digits)


def pagination(start_text, length_text, max_length=100, min_length=0):
    """``validatePagination`` of two query parameters (``parseInt`` semantics): ``(start, length)``."""
    start = parse_int(start_text or "0")
    length = parse_int(length_text or "10")
    if start is None or length is None:
        raise BullError("Invalid start or length")
    if start < 0 or length < min_length:
        raise BullError("Start and length must be positive")
    if length > max_length:
        raise BullError(f"Length must be less than or equal to {max_length}")
    return start, length


WORKER_FIELDS = ("queue", "endpoint", "opts")
ENDPOINT_FIELDS = ("url", "method", "headers", "timeout")
HTTP_METHODS = ("POST", "PUT", "PATCH")
WORKER_OPTION_FIELDS = ("concurrency", "removeOnComplete", "removeOnFail", "limiter", "maxStalledCount")
#: Worker options the original takes that the broker does not honour: refused rather than ignored.
UNSUPPORTED_WORKER_OPTIONS = ("removeOnComplete", "removeOnFail", "limiter", "maxStalledCount")
DEFAULT_TIMEOUT_MS = 3000
#: Longest endpoint timeout (ms) and most concurrent jobs the broker takes.
MAX_TIMEOUT_MS = 24 * 3600 * 1000
MAX_CONCURRENCY = 10_000


def _positive_int(value, maximum):
    """JavaScript's ``!value || (Number.isInteger(value) && value > 0)``, bounded by ``maximum``."""
    return falsy(value) or (_is_int(value) and 0 < value <= maximum)


def check_worker(body):
    """``validateWorkerMetadata``: the endpoint registration of ``POST /workers``, as the broker's arguments."""
    if not isinstance(body, dict):
        raise BullError("queue is required")
    for field in ("queue", "endpoint"):
        if falsy(body.get(field)):
            raise BullError(f"{field} is required")
    for field in body:
        if field not in WORKER_FIELDS:
            raise BullError(f"Invalid field: {field}")
    queue = body["queue"]
    if not isinstance(queue, str):
        raise BullError(f"Invalid queue {js(queue)}, must be a string")
    check_queue_name(queue)
    endpoint = check_endpoint(body["endpoint"])
    opts = body.get("opts")
    concurrency = 1
    if not falsy(opts):
        concurrency = check_worker_options(opts)
    return {"queue": queue, **endpoint, "concurrency": concurrency}


def check_endpoint(endpoint):
    """``validateWorkerEndpoint``: ``url`` (http or https) and ``method`` (POST, PUT, PATCH) required."""
    if not isinstance(endpoint, dict):
        raise BullError("url is required")
    for field in ("url", "method"):
        if falsy(endpoint.get(field)):
            raise BullError(f"{field} is required")
    if http_url_host(endpoint["url"]) is None or len(endpoint["url"]) > 8000:
        raise BullError("Invalid URL")
    method = endpoint["method"]
    if not isinstance(method, str) or method.upper() not in HTTP_METHODS:
        raise BullError(f"Invalid HTTP method {js(method)}")
    for field in endpoint:
        if field not in ENDPOINT_FIELDS:
            raise BullError(f"Invalid field: {field}")
    timeout = endpoint.get("timeout")
    if not _positive_int(timeout, MAX_TIMEOUT_MS):
        raise BullError("Invalid timeout")
    headers = endpoint.get("headers")
    if headers is not None and not (isinstance(headers, dict) and all(
            isinstance(value, str) and storable(name + value) for name, value in headers.items())):
        raise BullError("Invalid headers, must map header names to strings")
    return {"url": endpoint["url"], "method": method.upper(), "headers": headers or {},
            "timeout": (timeout or DEFAULT_TIMEOUT_MS) / 1000}


def check_worker_options(opts):
    """``validateWorkerOptions``; returns the concurrency. Options the broker cannot honour are refused."""
    if not isinstance(opts, dict):
        raise BullError(f"Invalid opts {js(opts)}, must be an object")
    for field in opts:
        if field not in WORKER_OPTION_FIELDS:
            raise BullError(f"Invalid field: {field}")
    concurrency = opts.get("concurrency")
    if not _positive_int(concurrency, MAX_CONCURRENCY):
        raise BullError("Invalid concurrency")
    for field in UNSUPPORTED_WORKER_OPTIONS:
        if field in opts:
            raise BullError(f"Unsupported worker option: {field}")
    return int(concurrency or 1)
