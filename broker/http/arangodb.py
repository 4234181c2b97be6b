"""The ArangoDB tasks API (API-NOTES section 3): ``/_api/tasks`` and ``/_db/<database>/_api/tasks``.

A thin translation onto the broker's schedules (see :mod:`.arangodb_shape`): the
broker generates ids, stores the task and fires its runs (``javascript`` jobs in the
namespace ``arangodb``, queue = the database, labelled ``schedule: <id>``); this module
holds no state. Routes, each also with a trailing slash and under ``/_db/<database>``:

* ``GET /_api/tasks``: the tasks of the database; ``GET /_api/tasks/<id>``: one task.
* ``POST /_api/tasks``: create, with the body's ``id`` or a generated one;
  ``POST /_api/tasks/<id>``: the body's ``id`` when present, else the path's;
  ``PUT /_api/tasks/<id>``: create with the path's id. The reply is the task as a later
  GET returns it.
* ``DELETE /_api/tasks/<id>``: ``{"error": false, "code": 200}``.

Databases are ``_system`` and those of the setting ``arangodb_databases``. Every error
is ArangoDB's ``{"error": true, "code", "errorNum", "errorMessage"}``.
"""
from tornado.ioloop import IOLoop

from tubeway.broker.http import arangodb_shape as shape
from tubeway.broker.http.base import ApiError, BaseHandler
from tubeway.broker.http.native import check_job
from tubeway.core.errors import JobConflict, JobNotFound, ValidationError
from tubeway.core.job import MAX_NAME, storable
from tubeway.core.schedule import normalize_schedule

#: Schedules asked of the broker per page when listing.
LIST_PAGE = 1000
#: errorNum of statuses not named otherwise (ArangoDB uses the HTTP status for most).
GENERIC_ERRORS = {500: 4}


def known_databases(settings):
    """``_system`` and the names of the setting ``arangodb_databases``."""
    extra = getattr(settings, "arangodb_databases", None) or ()
    if isinstance(extra, str):
        extra = extra.split(",")
    return {shape.SYSTEM_DATABASE, *(name.strip() for name in extra if isinstance(name, str) and name.strip())}


class TasksHandler(BaseHandler):
    """Every route of the API: ``database`` (None: ``_system``) and ``rest`` (what follows ``/_api/tasks/``)."""

    # -- errors ----------------------------------------------------------------------
    def write_error_body(self, status, message, **extra):
        error_num = extra.get("errorNum", GENERIC_ERRORS.get(status, status))
        self.reply({"error": True, "code": status, "errorNum": error_num, "errorMessage": message})

    def describe_error(self, exc, status):
        if isinstance(exc, JobNotFound):
            return 404, "task not found", {"errorNum": shape.ERROR_TASK_NOT_FOUND}
        if isinstance(exc, JobConflict):
            return 409, "duplicate task id", {"errorNum": shape.ERROR_TASK_DUPLICATE_ID}
        if isinstance(exc, ValidationError):
            return 400, exc.message or "bad parameter", {"errorNum": shape.ERROR_BAD_PARAMETER}
        status, message, extra = super().describe_error(exc, status)
        if status == 405:
            message = "method not supported"
        return status, message, extra

    # -- path --------------------------------------------------------------------------
    def _database(self, database):
        database = shape.SYSTEM_DATABASE if database is None else database
        if database not in known_databases(self.config):
            raise shape.arango_error(404, shape.ERROR_DATABASE_NOT_FOUND, "database not found")
        return database

    def _target(self, database, rest):
        """``(database, task id or None)`` of the path; 404/1228 for an unknown database, 400/601 for ``a/b``."""
        database = self._database(database)
        if not rest:
            return database, None
        if "/" in rest:
            raise shape.arango_error(400, shape.ERROR_SUPERFLUOUS_SUFFICES,
                                     "superfluous suffix, expecting /_api/tasks/<id>")
        return database, rest

    def _no_id(self):
        raise ApiError(405, "method not supported")

    # -- routes --------------------------------------------------------------------------
    async def get(self, database, rest):
        database, task_id = self._target(database, rest)
        if task_id is None:
            self.reply([shape.task_object(record) for record in await self._list(database)])
        else:
            self.reply(shape.task_object(await self._find(database, task_id)))

    async def post(self, database, rest):
        database, path_id = self._target(database, rest)
        body = self._body()
        chosen = shape.task_id_of(body.get("id")) if isinstance(body.get("id"), str) else None
        await self._create(database, body, chosen or path_id)

    async def put(self, database, rest):
        database, path_id = self._target(database, rest)
        if path_id is None:
            self._no_id()
        await self._create(database, self._body(), path_id)

    async def delete(self, database, rest):
        database, task_id = self._target(database, rest)
        if task_id is None:
            self._no_id()
        await self._find(database, task_id)
        await self.broker.delete_schedule(task_id, shape.NAMESPACE)
        self.reply({"error": False, "code": 200})

    # -- translation ---------------------------------------------------------------------
    def _body(self):
        try:
            body = self.json_body()
        except ApiError as error:
            raise shape.arango_error(400, shape.ERROR_CORRUPTED_JSON, error.message) from None
        if not isinstance(body, dict):
            raise shape.bad_parameter("expecting a JSON object as the body")
        return body

    async def _create(self, database, body, task_id):
        task_id = shape.task_id_of(task_id)
        shape.period_of(body)
        shape.offset_of(body)
        command = shape.command_of(body)
        kinds = set(self.plugins.kinds())
        if shape.KIND not in kinds:
            raise ApiError(503, "the javascript job kind is not loaded (plugins setting)")
        spec = normalize_schedule(shape.schedule_spec(body, database, task_id, command),
                                  normalize_job=lambda job: check_job(job, kinds, self.plugins, self.config))
        # Imported here: the dialect serves (and answers 503 above) even where the plugin cannot load.
        from tubeway.plugins.builtin.javascript import check_javascript

        problem = await IOLoop.current().run_in_executor(None, check_javascript, command, self.config)
        if problem:
            raise shape.bad_parameter(f"cannot compile command: {problem}")
        self.reply(shape.task_object(await self.broker.add_schedule(spec)))

    async def _find(self, database, task_id):
        """The schedule record of a task of ``database``; 404/1852 when there is none."""
        if len(task_id) > MAX_NAME or not storable(task_id):
            raise shape.task_not_found()
        record = await self.broker.get_schedule(task_id, shape.NAMESPACE)
        if record.get("queue") != database:
            raise shape.task_not_found()
        return record

    async def _list(self, database):
        records, cursor = [], None
        while True:
            page = await self.broker.list_schedules(namespace=shape.NAMESPACE, queue=database, limit=LIST_PAGE,
                                                    cursor=cursor)
            records.extend(page["schedules"])
            cursor = page.get("next_cursor")
            if not cursor:
                return records


def routes():
    """The tasks routes: one pattern, with or without ``/_db/<database>``, with or without a trailing slash."""
    return [(r"(?:/_db/([^/]*))?/_api/tasks(?:/(.*?))?/?$", TasksHandler)]
