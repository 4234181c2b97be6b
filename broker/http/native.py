"""The native API under ``/api/v1``: submit, list, read, retry and cancel jobs (schedules: ``native_schedules``).

Jobs are sent in the job model's own words (:data:`tubeway.core.job.SPEC_FIELDS`)
and read back as full records. Errors are ``{"error": message, ...details}``.
"""
from tubeway.broker.http.base import ApiError, BaseHandler, parse_count, routes_with_slash
from tubeway.core.errors import ValidationError
from tubeway.broker.job_filters import ORDERS
from tubeway.core.job import STATES, check_metadata, http_url_host, normalize_spec
from tubeway.core.selectors import SelectorError, parse_selector
from tubeway.plugins.builtin.http_task import host_allowed

#: Most jobs one request may submit (the body size limit applies as well).
MAX_BATCH = 10000
MAX_LIST = 1000
DEFAULT_LIST = 100


def check_job(item, kinds, plugins, settings):
    """Normalize one submitted job and have the plugins check it; raises ValidationError naming the field."""
    spec = normalize_spec(item, known_kinds=kinds)
    _check_callback_host(spec, settings)
    plugins.validate_job(spec, settings)
    return spec


def normalize_jobs(items, plugins, settings, batch):
    """Normalize and plugin-check each submitted job; 400 naming the first bad one."""
    kinds = set(plugins.kinds())
    specs = []
    for index, item in enumerate(items):
        try:
            specs.append(check_job(item, kinds, plugins, settings))
        except ValidationError as exc:
            where = {"index": index} if batch else {}
            raise ApiError(400, exc.message, **where, field=exc.field) from None
    return specs


def _check_callback_host(spec, settings):
    """A callback URL must name a host ``http_allowed_hosts`` allows, or the job is refused now, not at its end."""
    url = spec["callback_url"]
    if url is not None and not host_allowed(http_url_host(url), getattr(settings, "http_allowed_hosts", None)):
        raise ValidationError(f"'callback_url' host '{http_url_host(url)}' is not in http_allowed_hosts",
                              "callback_url")


def parse_labels(values):
    """``["key:value", ...]`` from repeated ``label`` parameters as a dict (400 if malformed)."""
    labels = {}
    for text in values:
        key, colon, value = text.partition(":")
        if not colon or not key:
            raise ApiError(400, f"label filter '{text}' must be KEY:VALUE", field="label")
        if labels.get(key, value) != value:
            raise ApiError(400, f"label '{key}' is given twice with different values", field="label")
        labels[key] = value
    return labels


class JobsHandler(BaseHandler):
    """``POST /api/v1/jobs`` submits one job or an array; ``GET`` lists them."""

    async def post(self):
        body = self.json_body()
        batch = isinstance(body, list)
        items = body if batch else [body]
        if not items:
            raise ApiError(400, "the array of jobs is empty", field=None)
        if len(items) > MAX_BATCH:
            raise ApiError(400, f"at most {MAX_BATCH} jobs per request", field=None)
        specs = normalize_jobs(items, self.plugins, self.config, batch)
        ids = (await self.broker.submit(specs))["ids"]
        self.reply({"ids": ids} if batch else {"id": ids[0]}, 201)

    async def get(self):
        query = {name: self._list_argument(name) for name in ("state", "id", "name", "queue")}
        states = query.pop("state")
        for state in states or ():
            if state not in STATES:
                raise ApiError(400, f"state must be one of {', '.join(STATES)}", field="state")
        limit = self.get_query_argument("limit", None)
        order = self.get_query_argument("order", None) or "created"
        if order not in ORDERS:
            raise ApiError(400, f"order must be one of {', '.join(ORDERS)}", field="order")
        offset = self.get_query_argument("offset", None)
        page = await self.broker.list_jobs(
            namespace=self.get_query_argument("namespace", None) or None,
            kind=self.get_query_argument("kind", None) or None,
            states=states, ids=query["id"], names=query["name"], queues=query["queue"],
            labels=parse_labels(self.get_query_arguments("label")),
            selector=self._selector(),
            limit=DEFAULT_LIST if limit is None else parse_count(limit, "limit", MAX_LIST, minimum=1),
            cursor=self.get_query_argument("cursor", None) or None,
            order=order, offset=0 if offset is None else parse_count(offset, "offset"),
            total=self.get_query_argument("total", "false") == "true",
        )
        self.reply({key: page.get(key) for key in ("jobs", "next_cursor", "total")})

    def _list_argument(self, name):
        """A filter of several values: the parameter repeated, or comma-separated (None when absent)."""
        values = [value for given in self.get_query_arguments(name) for value in given.split(",") if value]
        return values or None

    def _selector(self):
        text = self.get_query_argument("selector", None)
        try:
            return parse_selector(text) if text else None
        except SelectorError as exc:
            raise ApiError(400, str(exc), field="selector") from None


class JobHandler(BaseHandler):
    """``GET /api/v1/jobs/<id>``: the full job record; ``PATCH`` changes its ``labels`` and ``annotations``."""

    async def get(self, job_id):
        self.reply(await self.broker.get(self.job_id(job_id)))

    async def patch(self, job_id):
        body = self.json_body()
        if not isinstance(body, dict) or not body or set(body) - {"labels", "annotations"}:
            raise ApiError(400, 'the body must be {"labels"?: {...}, "annotations"?: {...}} (a null value removes '
                                "its key)", field=None)
        try:
            labels = check_metadata(body.get("labels"), "labels", removals=True)
            annotations = check_metadata(body.get("annotations"), "annotations", removals=True)
        except ValidationError as exc:
            raise ApiError(400, exc.message, field=exc.field) from None
        self.reply(await self.broker.set_metadata(self.job_id(job_id), labels, annotations))


class JobActionHandler(BaseHandler):
    """``POST /api/v1/jobs/<id>/retry`` and ``.../cancel``: the job after the change."""

    async def post(self, job_id, action):
        call = self.broker.retry if action == "retry" else self.broker.cancel
        self.reply(await call(self.job_id(job_id)))


class QueuesHandler(BaseHandler):
    """``GET /api/v1/queues``: every namespace and queue with counts per state."""

    async def get(self):
        self.reply(await self.broker.queues())


def routes():
    """The native API's Tornado rules (jobs, queues and schedules)."""
    from tubeway.broker.http.native_endpoints import endpoint_routes
    from tubeway.broker.http.native_schedules import schedule_routes

    return routes_with_slash([
        (r"/api/v1/jobs", JobsHandler),
        (r"/api/v1/jobs/([^/]+)", JobHandler),
        (r"/api/v1/jobs/([^/]+)/(retry|cancel)", JobActionHandler),
        (r"/api/v1/queues", QueuesHandler),
        *schedule_routes(),
        *endpoint_routes(),
    ])
