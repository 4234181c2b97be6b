"""ArangoDB tasks in Tubeway's words and back: a task body becomes a schedule spec, a schedule record a task.

A task is a broker schedule in the namespace ``arangodb`` whose queue is the task's
database. Its template is a ``javascript`` job holding the raw command and the
``params``; the task's ``name`` is kept as the template's label ``task_name``, and each run
is labelled ``task_id`` (the schedule's ``id_label``) as well as ``schedule``. The
schedule's own fields give the rest: ``created`` is its ``created_at``, ``period`` and
``offset`` are its own, a schedule without a period is a ``timed`` task (run once, then
removed by the broker). The policy is ``after_end``: the next run is due ``period``
seconds after the previous one ended, as in ArangoDB.

Errors are :class:`~tubeway.broker.http.base.ApiError` carrying ArangoDB's ``errorNum``.
"""
from tubeway.broker.http.base import ApiError
from tubeway.core.job import MAX_NAME, storable
from tubeway.core.schedule import MAX_SECONDS

NAMESPACE = "arangodb"
KIND = "javascript"
SYSTEM_DATABASE = "_system"
DEFAULT_NAME = "user-defined task"
#: The template label holding the task's name.
NAME_LABEL = "task_name"
#: The label each run carries holding its task's id (besides the broker's ``schedule``).
ID_LABEL = "task_id"
#: Longest name a label holds.
MAX_TASK_NAME = 1000
POLICY = "after_end"

#: ArangoDB's error numbers.
ERROR_BAD_PARAMETER = 10
ERROR_CORRUPTED_JSON = 600
ERROR_SUPERFLUOUS_SUFFICES = 601
ERROR_DATABASE_NOT_FOUND = 1228
ERROR_TASK_DUPLICATE_ID = 1851
ERROR_TASK_NOT_FOUND = 1852

PERIOD_MESSAGE = "task period must be specified and positive"


def arango_error(status, error_num, message):
    """An :class:`ApiError` answered as ArangoDB's error body."""
    return ApiError(status, message, errorNum=error_num)


def bad_parameter(message):
    """400 with errorNum 10 (ArangoDB's ``bad parameter``)."""
    return arango_error(400, ERROR_BAD_PARAMETER, message)


def task_not_found():
    """404 with errorNum 1852."""
    return arango_error(404, ERROR_TASK_NOT_FOUND, "task not found")


def wrap_command(command):
    """The command as ArangoDB shows it: the body of a function called with ``params``."""
    return f"(function (params) {{ {command} }} )(params);"


def _number(body, field, message):
    value = body[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -MAX_SECONDS <= value <= MAX_SECONDS:
        raise bad_parameter(message)
    return float(value)


def period_of(body):
    """The body's ``period`` in seconds (> 0), or None (absent or null: a timed task)."""
    if body.get("period") is None:
        return None
    period = _number(body, "period", PERIOD_MESSAGE)
    if period <= 0:
        raise bad_parameter(PERIOD_MESSAGE)
    return period


def offset_of(body):
    """The body's ``offset`` in seconds (default 0); a negative one means at once, as 0 does."""
    if body.get("offset") is None:
        return 0.0
    return max(0.0, _number(body, "offset", f"task offset must be a number of seconds up to {MAX_SECONDS:.0e}"))


def name_of(body):
    """The body's ``name``; anything but a string is the default, as ArangoDB does."""
    name = body.get("name")
    if not isinstance(name, str):
        return DEFAULT_NAME
    if len(name) > MAX_TASK_NAME or not storable(name):
        raise bad_parameter(f"task name must be at most {MAX_TASK_NAME} characters, without NUL")
    return name


def command_of(body):
    """The body's raw ``command`` (a non-empty string), else 400/10 ``command must be specified``."""
    command = body.get("command")
    if not isinstance(command, str) or not command.strip():
        raise bad_parameter("command must be specified")
    return command


def task_id_of(value):
    """A client-chosen task id (a string; empty means none), else 400/10."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_NAME or not storable(value):
        raise bad_parameter(f"task id must be a string of at most {MAX_NAME} characters, without NUL")
    return value


def schedule_spec(body, database, task_id, command):
    """The schedule spec of a checked task body (``command`` already compile-checked)."""
    payload = {"command": command}
    if "params" in body:
        payload["params"] = body["params"]
    job = {"namespace": NAMESPACE, "queue": database, "kind": KIND, "payload": payload,
           "labels": {NAME_LABEL: name_of(body)}}
    return {"id": task_id, "job": job, "period": period_of(body), "offset": offset_of(body), "policy": POLICY,
            "id_label": ID_LABEL}


def task_object(record):
    """The ArangoDB task of a schedule record, keys in ArangoDB's order; ``period`` only when periodic."""
    job = record.get("job") or {}
    payload = job.get("payload")
    command = payload.get("command") if isinstance(payload, dict) else None
    task = {"id": record["id"], "name": (job.get("labels") or {}).get(NAME_LABEL, DEFAULT_NAME),
            "created": float(record["created_at"]),
            "type": "timed" if record.get("period") is None else "periodic"}
    if record.get("period") is not None:
        task["period"] = float(record["period"])
    task.update({"offset": float(record.get("offset") or 0.0),
                 "command": wrap_command(command if isinstance(command, str) else ""),
                 "database": record["queue"]})
    return task
