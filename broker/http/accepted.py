"""The Accepted jobs API (API-NOTES section 2): jobs that external workers take over HTTP.

Jobs live in the namespace ``accepted`` with the kind ``external``: no Tubeway
worker runs them; a client takes one with ``POST /want_job`` and reports with
``PUT /jobs/<id>``. Errors are ``{"error": "..."}``. The job's shape, shared with its
callbacks, is :func:`~tubeway.broker.http.accepted_shape.accepted_job`.
"""
from urllib.parse import quote

from tubeway.broker.http.accepted_shape import NAMESPACE, accepted_job
from tubeway.broker.http.base import ApiError, BaseHandler, parse_count, routes_with_slash
from tubeway.broker.http.native import normalize_jobs

KIND = "external"
DEFAULT_PRIORITY = 1
MAX_PRIORITY = 3

PRIORITY = "X-Accepted-Priority"
CALLBACK_URL = "X-Accepted-Callback-URL"
WAIT_RESULT = "X-Accepted-Wait-Result"
BLOCK_FOR = "X-Accepted-Block-For"
LEASE = "X-Accepted-Timeout"
#: Numeric headers of ``POST /jobs`` and the spec fields they set.
SECONDS_HEADERS = {
    "result_ttl": "X-Accepted-Result-TTL",
    "timeout": "X-Accepted-Job-Timeout",
    "delay": "X-Accepted-Delay",
}
HEADER_OF_FIELD = {**SECONDS_HEADERS, "priority": PRIORITY, "callback_url": CALLBACK_URL}
UPDATE_STATUSES = ("done", "failed", "running")


class AcceptedHandler(BaseHandler):
    """Base of the Accepted jobs API handlers: its error format and header parsing."""

    def write_error_body(self, status, message, **extra):
        self.reply({"error": message})

    def count(self, header, query=None, default=None, maximum=2**31 - 1):
        """An integer from ``header`` or else the ``query`` parameter (400 naming it if bad)."""
        if header in self.request.headers or query is None:
            return self.header_count(header, default, maximum)
        raw = self.get_query_argument(query, None)
        return default if raw is None else parse_count(raw, f"query parameter '{query}'", maximum)


class JobsHandler(AcceptedHandler):
    """``POST /jobs``: enqueue a job; 202 with ``Location`` and the job."""

    async def post(self):
        body = self.json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object with 'queue' and 'params'")
        queue = body.get("queue")
        if not isinstance(queue, str) or not queue:
            raise ApiError(400, "'queue' must be a non-empty string")
        spec = {
            "namespace": NAMESPACE, "kind": KIND, "queue": queue,
            "payload": body["params"] if "params" in body else body.get("data"),
            "priority": self.header_count(PRIORITY, DEFAULT_PRIORITY, MAX_PRIORITY),
        }
        for field, header in SECONDS_HEADERS.items():
            value = self.header_count(header)
            if value is not None:
                spec[field] = value
        if CALLBACK_URL in self.request.headers:
            spec["callback_url"] = self.request.headers[CALLBACK_URL].strip()
        spec = self._normalize(spec)
        job_id = (await self.broker.submit([spec]))["ids"][0]
        self.set_header("Location", f"/jobs/{quote(job_id, safe='')}")
        state = "delayed" if spec["run_at"] is not None else "queued"
        self.reply(accepted_job({**spec, "id": job_id, "state": state}), 202)

    def _normalize(self, spec):
        try:
            return normalize_jobs([spec], self.plugins, self.config, batch=False)[0]
        except ApiError as exc:
            header = HEADER_OF_FIELD.get(exc.extra.get("field"))
            if header is None:
                raise
            raise ApiError(400, f"{header}: {exc.message}") from None


class JobHandler(AcceptedHandler):
    """``GET``, ``PUT`` and ``DELETE /jobs/<id>``."""

    async def get(self, job_id):
        job_id = self.job_id(job_id)
        wait = self.header_count(WAIT_RESULT)
        if wait is None:
            job = await self.broker.get(job_id, namespace=NAMESPACE)
        else:
            job = await self.broker.wait(job_id, wait, namespace=NAMESPACE)
        self.reply(accepted_job(job))

    async def put(self, job_id):
        job_id = self.job_id(job_id)
        body = self.json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object with 'status'")
        status = body.get("status")
        if status not in UPDATE_STATUSES:
            raise ApiError(400, f"'status' must be one of {', '.join(UPDATE_STATUSES)}")
        result = body.get("result") if status != "running" else None
        error = None
        if status == "failed":
            error = result if isinstance(result, str) and result else "failed by worker"
        job = await self.broker.update(job_id, status, result=result, error=error,
                                       lease=self.header_count(LEASE), namespace=NAMESPACE)
        self.reply(accepted_job(job))

    async def delete(self, job_id):
        self.reply(accepted_job(await self.broker.delete(self.job_id(job_id), namespace=NAMESPACE)))


class WantJobHandler(AcceptedHandler):
    """``POST /want_job``: lease the next job (200) or answer 204 when there is none."""

    async def post(self):
        queues = self._queues()
        block = self.count(BLOCK_FOR, "block", 0)
        lease = self.count(LEASE, "timeout", getattr(self.config, "lease_seconds", 300))
        job = await self.broker.take(NAMESPACE, queues or None, lease, block, kinds=[KIND])
        if job is None:
            self.set_status(204)
        else:
            self.reply(accepted_job(job))

    def _queues(self):
        """Queues named by the body's ``queue`` (or ``queues``) and by ``?queue=`` (or ``?queues=``)."""
        body = self.json_body(required=False)
        if body is not None and not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object like {\"queue\": [...]}")
        wanted = []
        for key in ("queue", "queues"):
            named = (body or {}).get(key)
            named = [named] if isinstance(named, str) else [] if named is None else named
            if not isinstance(named, list):
                raise ApiError(400, f"'{key}' must be a string or an array of strings")
            wanted += named + self.get_query_arguments(key)
        if not all(isinstance(q, str) and q for q in wanted):
            raise ApiError(400, "each queue must be a non-empty string")
        return list(dict.fromkeys(wanted))


def routes():
    """The Accepted jobs API's Tornado rules."""
    return routes_with_slash([
        (r"/jobs", JobsHandler),
        (r"/jobs/([^/]+)", JobHandler),
        (r"/want_job", WantJobHandler),
    ])
