"""The native API's schedules: ``/api/v1/schedules`` to create and list, ``/api/v1/schedules/<id>`` to read and delete.

A schedule is sent in :mod:`tubeway.core.schedule`'s words (``id``, ``job``,
``period``, ``offset``, ``policy``, ``id_label``) and read back as the broker's record. Ids are
unique per namespace: reading or deleting one takes ``?namespace=`` (default
``default``). Errors are the native API's ``{"error": message, ...details}``.
"""
from tubeway.broker.http.base import ApiError, BaseHandler, parse_count
from tubeway.broker.http.native import DEFAULT_LIST, MAX_LIST, check_job
from tubeway.core.job import DEFAULT_NAMESPACE, MAX_NAME
from tubeway.core.errors import JobNotFound
from tubeway.core.schedule import normalize_schedule


class SchedulesHandler(BaseHandler):
    """``POST /api/v1/schedules`` creates one (201; 409 when its id is taken); ``GET`` lists them."""

    async def post(self):
        body = self.json_body()
        kinds = set(self.plugins.kinds())
        spec = normalize_schedule(body, normalize_job=lambda job: check_job(job, kinds, self.plugins, self.config))
        self.reply(await self.broker.add_schedule(spec), 201)

    async def get(self):
        limit = self.get_query_argument("limit", None)
        page = await self.broker.list_schedules(
            namespace=self.get_query_argument("namespace", None) or None,
            queue=self.get_query_argument("queue", None) or None,
            limit=DEFAULT_LIST if limit is None else parse_count(limit, "limit", MAX_LIST, minimum=1),
            cursor=self.get_query_argument("cursor", None) or None,
        )
        self.reply({"schedules": page["schedules"], "next_cursor": page.get("next_cursor")})


class ScheduleHandler(BaseHandler):
    """``GET /api/v1/schedules/<id>``: the schedule; ``DELETE``: remove it (its runs stay), answering it as it was."""

    async def get(self, schedule_id):
        self.reply(await self.broker.get_schedule(*self._named(schedule_id)))

    async def delete(self, schedule_id):
        self.reply(await self.broker.delete_schedule(*self._named(schedule_id)))

    def _named(self, schedule_id):
        if not schedule_id or len(schedule_id) > MAX_NAME:
            raise JobNotFound(f"no schedule with id '{schedule_id[:MAX_NAME]}'")
        namespace = self.get_query_argument("namespace", None) or DEFAULT_NAMESPACE
        if len(namespace) > MAX_NAME:
            raise ApiError(400, f"namespace must be at most {MAX_NAME} characters", field="namespace")
        return schedule_id, namespace


def schedule_routes():
    """The schedule rules (the native module adds the trailing-slash variants)."""
    return [
        (r"/api/v1/schedules", SchedulesHandler),
        (r"/api/v1/schedules/([^/]+)", ScheduleHandler),
    ]
