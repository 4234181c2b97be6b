"""Cloud Foundry's words for Tubeway's: task JSON, states, timestamps, metadata rules and the ``errors`` body.

A task is a ``command`` job of the namespace ``cloudfoundry`` whose queue is its app's
guid; its guid is the job id, its ``sequence_id`` the job's number in the queue.
Fields Cloud Foundry keeps that the command does not need (``droplet_guid``, ``user``)
ride in the payload's ``context``.
"""
import datetime
import re

from tubeway.broker.http.base import ApiError

NAMESPACE = "cloudfoundry"
#: Tubeway state -> Cloud Foundry task state.
STATE_NAMES = {"delayed": "PENDING", "queued": "PENDING", "running": "RUNNING", "cancelling": "CANCELING",
               "done": "SUCCEEDED", "failed": "FAILED", "cancelled": "FAILED"}
#: Cloud Foundry task state -> the Tubeway states it covers.
STATES_OF = {}
for _native, _cf in STATE_NAMES.items():
    STATES_OF.setdefault(_cf, []).append(_native)
CANCELLED_REASON = "task was cancelled"

#: ``(code, title)`` of each HTTP status's error, and the message formats Cloud Controller uses.
ERRORS = {
    "MessageParseError": (400, 1001, "Request invalid due to parse error: {}"),
    "NotAuthenticated": (401, 10002, "Authentication error"),
    "NotAuthorized": (403, 10003, "You are not authorized to perform the requested action"),
    "BadQueryParameter": (400, 10005, "The query parameter is invalid: {}"),
    "UnprocessableEntity": (422, 10008, "{}"),
    "ResourceNotFound": (404, 10010, "{}"),
    "NotFound": (404, 10000, "Unknown request"),
    "FeatureDisabled": (403, 330002, "Feature Disabled: {}"),
    "MethodNotAllowed": (405, 10000, "Unknown request"),
    "ServiceUnavailable": (503, 10015, "{}"),
    "ServerError": (500, 10001, "An unknown error occurred."),
}


def cf_error(name, *details):
    """An :class:`ApiError` answered as Cloud Foundry's ``errors`` body (several details joined by ``, ``)."""
    status, code, template = ERRORS[name]
    return ApiError(status, template.format(", ".join(details)), cf_name=name, cf_code=code)


def error_body(name, code, detail):
    """The ``{"errors": [...]}`` body."""
    return {"errors": [{"detail": detail, "title": f"CF-{name}", "code": code}]}


def timestamp(seconds):
    """Epoch seconds as Cloud Foundry writes times: UTC, whole seconds, ``Z``."""
    moment = datetime.datetime.fromtimestamp(int(seconds), datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


TIMESTAMP = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")


def parse_timestamp(text):
    """Epoch seconds of a ``YYYY-MM-DDThh:mm:ssZ`` time, or None if it is not one."""
    if not TIMESTAMP.match(text):
        return None
    try:
        moment = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def failure_reason(record):
    """``result.failure_reason``: null unless the task FAILED."""
    if record["state"] == "cancelled":
        return CANCELLED_REASON
    if record["state"] == "failed":
        return record.get("error") or "task failed"
    return None


def task_json(record, base, with_command=True):
    """A job record as Cloud Foundry's task resource (``command`` left out of global lists, as CF does)."""
    payload = record.get("payload") or {}
    context = payload.get("context") or {}
    guid, app = record["id"], record["queue"]
    links = {
        "self": {"href": f"{base}/v3/tasks/{guid}"},
        "app": {"href": f"{base}/v3/apps/{app}"},
        "cancel": {"href": f"{base}/v3/tasks/{guid}/actions/cancel", "method": "POST"},
    }
    if context.get("droplet_guid"):
        links["droplet"] = {"href": f"{base}/v3/droplets/{context['droplet_guid']}"}
    task = {
        "guid": guid,
        "created_at": timestamp(record["created_at"]),
        "updated_at": timestamp(record["updated_at"]),
        "sequence_id": record.get("sequence"),
        "name": record.get("name"),
        "command": payload.get("command"),
        "user": context.get("user"),
        "state": STATE_NAMES[record["state"]],
        "memory_in_mb": payload.get("memory_in_mb"),
        "disk_in_mb": payload.get("disk_in_mb"),
        "log_rate_limit_in_bytes_per_second": payload.get("log_rate_limit_in_bytes_per_second", -1),
        "result": {"failure_reason": failure_reason(record)},
        "droplet_guid": context.get("droplet_guid"),
        "relationships": {"app": {"data": {"guid": app}}},
        "metadata": {"labels": record.get("labels") or {}, "annotations": record.get("annotations") or {}},
        "links": links,
    }
    if not with_command:
        del task["command"]
    return task


# -- metadata, as Cloud Controller's MetadataValidatorHelper checks it ------------------------
_INVALID_CHAR = re.compile(r"[^\w\-.]", re.ASCII)
_ALNUM_ENDS = re.compile(r"\A(?=[a-zA-Z\d]).*[a-zA-Z\d]\Z", re.DOTALL)
_DOMAIN = re.compile(r"\A(([a-z0-9]|[a-z0-9][a-z0-9-]{0,61}[a-z0-9])\.)+([a-z0-9]|[a-z0-9][a-z0-9-]{0,61}[a-z0-9])\Z",
                     re.IGNORECASE)
MAX_KEY, MAX_PREFIX, MAX_ANNOTATION = 63, 253, 5000


def key_error(key):
    """Cloud Controller's message for an invalid label or annotation key, or None."""
    if not key:
        return "key cannot be empty string"
    if key.count("/") > 1:
        return "key has more than one '/'"
    prefix, name = key.split("/") if "/" in key else (None, key)
    if prefix is not None and not _DOMAIN.match(prefix):
        return f"prefix '{prefix}' must be in valid dns format"
    if prefix is not None and len(prefix) > MAX_PREFIX:
        return f"prefix '{prefix[:8]}...' is greater than {MAX_PREFIX} characters"
    if prefix is not None and prefix.lower() == "cloudfoundry.org":
        return "prefix 'cloudfoundry.org' is reserved"
    if not name:
        return "key cannot be empty string"
    return _name_error(name)


def _name_error(text):
    if _INVALID_CHAR.search(text):
        return f"'{text}' contains invalid characters"
    if not _ALNUM_ENDS.match(text):
        return f"'{text}' starts or ends with invalid characters"
    if len(text) > MAX_KEY:
        return f"'{text[:8]}...' is greater than {MAX_KEY} characters"
    return None


def value_error(value):
    """Cloud Controller's message for an invalid label value, or None (empty and null are valid)."""
    return None if not value else _name_error(value)


def metadata_errors(metadata):
    """Cloud Controller's messages for a ``metadata`` object (``Metadata ...``), empty if it is valid."""
    if not isinstance(metadata, dict):
        return ["Metadata must be an object"]
    errors = []
    unexpected = [key for key in metadata if key not in ("labels", "annotations")]
    if unexpected:
        errors.append("Metadata has unexpected field(s): " + " ".join(f"'{key}'" for key in unexpected))
    labels, annotations = metadata.get("labels"), metadata.get("annotations")
    if labels is not None:
        if not isinstance(labels, dict):
            errors.append("Metadata 'labels' is not an object")
        else:
            for key, value in labels.items():
                if value is not None and not isinstance(value, str):
                    errors.append(f"Metadata label value error: '{value}' contains invalid characters")
                    continue
                problems = (("label key error", key_error(key)), ("label value error", value_error(value)))
                errors.extend(f"Metadata {what}: {problem}" for what, problem in problems if problem)
    if annotations is not None:
        if not isinstance(annotations, dict):
            errors.append("Metadata 'annotations' is not an object")
        else:
            for key, value in annotations.items():
                if value is not None and not isinstance(value, str):
                    errors.append(f"Metadata annotation value error: '{value}' must be a string")
                    continue
                problem = key_error(key)
                if value and problem:
                    errors.append(f"Metadata annotation key error: {problem}")
                if value is not None and len(value) > MAX_ANNOTATION:
                    errors.append(f"Metadata annotation value error: '{value[:8]}...' is greater than 5000 "
                                  "characters")
    return errors
