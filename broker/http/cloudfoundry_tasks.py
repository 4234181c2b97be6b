"""The task routes of Cloud Foundry's v3 API: create, list, get, update metadata, cancel.

Each handler checks the request as Cloud Controller does (messages included), asks the
broker, and answers with :func:`~.cloudfoundry_shape.task_json`.
"""
import secrets

from tubeway.broker.http.cloudfoundry import CloudFoundryHandler
from tubeway.broker.http.cloudfoundry_query import ListRequest
from tubeway.broker.http.cloudfoundry_shape import NAMESPACE, STATE_NAMES, cf_error, metadata_errors, task_json
from tubeway.broker.http.native import check_job
from tubeway.core.errors import JobConflict, ValidationError
from tubeway.core.job import MAX_NAME, storable
from tubeway.plugins.builtin.command import CommandsDisabled

#: Fields a create body may hold (Cloud Controller's TaskCreateMessage).
CREATE_FIELDS = ("name", "command", "disk_in_mb", "memory_in_mb", "log_rate_limit_in_bytes_per_second",
                 "droplet_guid", "template", "user", "metadata")
DEFAULT_MEMORY_MB = 1024
DEFAULT_DISK_MB = 1024
MAX_BIGINT = 2**63 - 1
ENDED = ("SUCCEEDED", "FAILED")


def _unknown(body, allowed):
    unknown = "', '".join(key for key in body if key not in allowed)
    return [f"Unknown field(s): '{unknown}'"] if unknown else []


def _integer(body, field, minimum, maximum=MAX_BIGINT):
    value = body.get(field)
    label = field.replace("_", " ").capitalize()
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [f"{label} is not a number"]
    if isinstance(value, float) and not value.is_integer():
        return [f"{label} must be an integer"]
    if value <= minimum:
        return [f"{label} must be greater than {minimum}"]
    if value > maximum:
        return [f"{label} must be less than or equal to {maximum}"]
    return []


def create_errors(body):
    """Cloud Controller's messages for a create body, in its order; empty when it is valid."""
    errors = _unknown(body, CREATE_FIELDS)
    errors += _integer(body, "disk_in_mb", 0) + _integer(body, "memory_in_mb", 0)
    errors += _integer(body, "log_rate_limit_in_bytes_per_second", -2)
    droplet = body.get("droplet_guid")
    if droplet is not None and not isinstance(droplet, str):
        errors.append("Droplet guid must be a string")
    elif droplet is not None and not 1 <= len(droplet) <= 200:
        errors.append("Droplet guid must be between 1 and 200 characters")
    user = body.get("user")
    if user is not None and (not isinstance(user, str) or not 1 <= len(user) <= 255):
        errors.append("User must be between 1 and 255 characters")
    for field in ("command", "name"):
        value = body.get(field)
        if value is not None and (not isinstance(value, str) or not storable(value)):
            errors.append(f"{field.capitalize()} must be a string")
    if body.get("name") is not None and isinstance(body["name"], str) and len(body["name"]) > MAX_NAME:
        errors.append(f"Name must be at most {MAX_NAME} characters")
    if body.get("command") is None and body.get("template") is None:
        errors.append("Command No command or template provided")
    elif body.get("command") is None:
        errors.append("Template processes are not served here: give the task a command")
    if "metadata" in body:
        errors += metadata_errors(body["metadata"])
    return errors


class AppTasksHandler(CloudFoundryHandler):
    """``POST /v3/apps/<guid>/tasks`` creates a task (202); ``GET`` lists the app's tasks."""

    async def post(self, app_guid):
        if not getattr(self.config, "enable_commands", False):
            raise cf_error("FeatureDisabled", "task_creation")
        body = self.task_body()
        errors = create_errors(body)
        if errors:
            raise cf_error("UnprocessableEntity", *errors)
        self._check_app_guid(app_guid)
        spec = self._spec(app_guid, body)
        try:
            spec = check_job(spec, set(self.plugins.kinds()), self.plugins, self.config)
        except CommandsDisabled:
            raise cf_error("FeatureDisabled", "task_creation") from None
        except ValidationError as exc:
            raise cf_error("UnprocessableEntity", exc.message) from None
        [task_id] = (await self.broker.submit([spec]))["ids"]
        self.reply(task_json(await self.broker.get(task_id), self.base_url), 202)

    async def get(self, app_guid):
        arguments = self._arguments()
        arguments.pop("app_guid", None)  # the route's guid wins over the query's, as in Cloud Controller
        await self._app_list(app_guid, arguments)

    async def _app_list(self, app_guid, arguments):
        request = ListRequest(arguments, app_guid, self.apps).parse()
        self._check_app_guid(app_guid)
        page = await self.broker.list_jobs(**request.broker_query())
        if page["total"] == 0 and app_guid not in self.apps:
            ever = await self.broker.list_jobs(namespace=NAMESPACE, queue=app_guid, limit=1)
            if not ever["jobs"]:
                raise cf_error("ResourceNotFound", "App not found")
        url = f"{self.base_url}/v3/apps/{app_guid}/tasks"
        self.reply({"pagination": request.pagination(url, page["total"]),
                    "resources": [task_json(record, self.base_url) for record in page["jobs"]]})

    def _arguments(self):
        return {name: [v.decode("utf-8", "replace") for v in values]
                for name, values in self.request.query_arguments.items()}

    @staticmethod
    def _check_app_guid(app_guid):
        if not app_guid or len(app_guid) > MAX_NAME or not storable(app_guid):
            raise cf_error("ResourceNotFound", "App not found")

    def _spec(self, app_guid, body):
        app = self.apps.get(app_guid) or {}
        payload = {
            "command": body["command"],
            "memory_in_mb": _int_or(body.get("memory_in_mb"), app.get("memory_in_mb"), DEFAULT_MEMORY_MB),
            "disk_in_mb": _int_or(body.get("disk_in_mb"), app.get("disk_in_mb"), DEFAULT_DISK_MB),
            "log_rate_limit_in_bytes_per_second": _int_or(body.get("log_rate_limit_in_bytes_per_second"),
                                                          app.get("log_rate_limit_in_bytes_per_second"), -1),
            "context": {"droplet_guid": body.get("droplet_guid"), "user": body.get("user")},
        }
        for key in ("dir", "env"):
            if app.get(key):
                payload[key] = app[key]
        metadata = body.get("metadata") or {}
        return {
            "namespace": NAMESPACE, "queue": app_guid, "kind": "command", "payload": payload, "attempts": 1,
            "name": body.get("name") or secrets.token_hex(4),
            "labels": {k: v for k, v in (metadata.get("labels") or {}).items() if v is not None},
            "annotations": {k: v for k, v in (metadata.get("annotations") or {}).items() if v is not None},
        }


def _int_or(*values):
    return next(int(value) for value in values if value is not None)


class TasksHandler(AppTasksHandler):
    """``GET /v3/tasks``: every app's tasks (without ``command``, as Cloud Foundry lists them)."""

    async def get(self):
        arguments = self._arguments()
        app_guid = (arguments.pop("app_guid", None) or [""])[-1]
        if app_guid:  # Cloud Controller reads a query ``app_guid`` as the nested route's: that app's list
            return await self._app_list(app_guid, arguments)
        request = ListRequest(arguments, None, self.apps).parse()
        page = await self.broker.list_jobs(**request.broker_query())
        self.reply({"pagination": request.pagination(f"{self.base_url}/v3/tasks", page["total"]),
                    "resources": [task_json(record, self.base_url, with_command=False) for record in page["jobs"]]})


class TaskHandler(CloudFoundryHandler):
    """``GET /v3/tasks/<guid>``: one task; ``PATCH`` changes its metadata."""

    async def get(self, guid):
        self.reply(task_json(await self.task(guid), self.base_url))

    async def patch(self, guid):
        body = self.task_body()
        errors = _unknown(body, ("metadata",)) + (metadata_errors(body["metadata"]) if "metadata" in body else [])
        if errors:
            raise cf_error("UnprocessableEntity", *errors)
        record = await self.task(guid)
        metadata = body.get("metadata") or {}
        record = await self.broker.set_metadata(record["id"], metadata.get("labels"), metadata.get("annotations"),
                                                namespace=NAMESPACE)
        self.reply(task_json(record, self.base_url))


class CancelHandler(CloudFoundryHandler):
    """``POST /v3/tasks/<guid>/actions/cancel`` and ``PUT /v3/tasks/<guid>/cancel``: 202, the task CANCELING."""

    async def post(self, guid):
        record = await self.task(guid)
        if STATE_NAMES[record["state"]] in ENDED:
            raise self._ended(record)
        try:
            record = await self.broker.cancel(record["id"], namespace=NAMESPACE)
        except JobConflict:
            raise self._ended(await self.task(guid)) from None
        # Cloud Controller answers the state the cancel set: CANCELING, until the run has stopped.
        self.reply(dict(task_json(record, self.base_url), state="CANCELING", result={"failure_reason": None}), 202)

    put = post

    @staticmethod
    def _ended(record):
        state = STATE_NAMES[record["state"]]
        return cf_error("UnprocessableEntity", f"Task state is {state} and therefore cannot be canceled")
