"""The BullMQ proxy API (API-NOTES section 5; the original is taskforcesh/bullmq-proxy).

Routes, each also with a trailing slash, queue names percent-decoded:

* ``POST /queues/<q>/jobs``: add an array of ``{name, data, opts?}`` in one transaction; the
  reply is the array of JobJson. ``GET /queues/<q>/jobs?statuses&start&length``: a page and counts.
* ``GET /queues/<q>/jobs/<id>``: one job (its ``jobId``, or its per-queue number).
* ``POST /queues/<q>/jobs/<id>/progress`` and ``POST .../logs``: from the endpoint running the job,
  with its lock token as ``Bearer`` (or an API token); ``GET .../logs?start&length``.
* ``POST /workers`` registers the HTTP endpoint of a queue (the broker's endpoint of
  ``(bullmq, queue)``, to which it pushes each job as ``{"job": JobJson, "token": lock}``);
  ``GET /workers``: ``{queue: url}``; ``DELETE /workers/<q>``.

A thin translation: jobs are broker jobs in the namespace ``bullmq`` (queue = the queue name),
their order (priority, lifo), retries, retention, client-chosen ids and lock tokens are the
broker's; the checks are :mod:`.bullmq_checks`'s and the words :mod:`.bullmq_shape`'s. Errors are
plain text, with the original's messages and statuses (400, 401, 404).
"""
import asyncio

from tubeway.broker.http import bullmq_checks as checks
from tubeway.broker.http import bullmq_shape as shape
from tubeway.broker.http.auth import presented_token, token_matches
from tubeway.broker.http.base import BaseHandler, routes_with_slash
from tubeway.broker.http.native import check_job
from tubeway.core.errors import JobNotFound, LockRefused, ValidationError

#: The job kind of BullMQ jobs: pushed to the endpoint registered for their queue.
KIND = "push"
#: Most jobs one request may add (the body size limit applies as well).
MAX_BATCH = 10000
#: Ids the broker reads back per LIST.
READ_BACK = 1000
#: The order each status is listed in: newest first, as BullMQ lists (ended jobs by when they ended).
STATUS_ORDER = {"completed": "-updated", "failed": "-updated", "prioritized": "dispatch"}


class BullHandler(BaseHandler):
    """The base of the BullMQ routes: plain-text errors, queue names checked, jobs found by BullMQ id."""

    def write_error_body(self, status, message, **extra):
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.write(message)

    def describe_error(self, exc, status):
        if isinstance(exc, checks.BullError):
            return exc.status, exc.message, {}
        if isinstance(exc, JobNotFound):
            return 404, "Job not found", {}
        if isinstance(exc, LockRefused):
            return 401, "Unauthorized", {}
        if isinstance(exc, ValidationError):
            return 400, exc.message or "Invalid request", {}
        status, message, extra = super().describe_error(exc, status)
        if status == 401:
            message = "Unauthorized"
        return status, message, extra

    def ok(self):
        """Answer 200 ``OK`` as text, as the original does."""
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.write("OK")

    def queue(self, name):
        """The decoded queue name of the path, checked (400 with the original's message)."""
        return checks.check_queue_name(name)

    async def find(self, queue, bull_id):
        """The record of the job BullMQ knows as ``bull_id`` in ``queue`` (404 ``Job not found``)."""
        number = checks.parse_int(bull_id)
        if number is not None and str(number) == bull_id:  # BullMQ's own ids: custom ids cannot be integers
            if 0 < number < 2**63:
                page = await self.broker.list_jobs(namespace=shape.NAMESPACE, queue=queue, sequences=[number],
                                                   limit=1)
                if page["jobs"]:
                    return page["jobs"][0]
            raise JobNotFound("Job not found")
        return await self.broker.get_unique(checks.unique_key(queue, bull_id), namespace=shape.NAMESPACE)


class JobsHandler(BullHandler):
    """``POST /queues/<q>/jobs`` adds jobs; ``GET`` lists a page of them with counts per status."""

    async def post(self, queue):
        queue = self.queue(queue)
        body = self.json_body()
        if not isinstance(body, list):
            raise checks.BullError("Body must be an array")
        if len(body) > MAX_BATCH:
            raise checks.BullError(f"Too many jobs, at most {MAX_BATCH} per request")
        for job in body:
            checks.check_job(job, queue)
        if not body:
            return self.reply([])
        kinds = set(self.plugins.kinds())
        specs = [check_job(shape.job_spec(job, queue, KIND), kinds, self.plugins, self.config) for job in body]
        stored = await self.broker.submit(specs)
        ids = stored["ids"]
        # A job made now is answered from its spec and what the broker gave it; one a jobId found is read back.
        records = await self._read_back([job_id for job_id, new in zip(ids, stored["created"]) if not new])
        made = {job_id: dict(spec, id=job_id, state="delayed" if spec["run_at"] else "queued", sequence=sequence,
                             created_at=stored["created_at"], attempts=0)
                for job_id, spec, new, sequence in zip(ids, specs, stored["created"], stored["sequences"]) if new}
        self.reply([shape.job_json(records.get(job_id) or made[job_id]) for job_id in ids])

    async def _read_back(self, ids):
        unique = list(dict.fromkeys(ids))
        if not unique:
            return {}
        chunks = [unique[i:i + READ_BACK] for i in range(0, len(unique), READ_BACK)]
        pages = await asyncio.gather(*(self.broker.list_jobs(namespace=shape.NAMESPACE, ids=chunk, limit=len(chunk))
                                       for chunk in chunks))
        return {record["id"]: record for page in pages for record in page["jobs"]}

    async def get(self, queue):
        queue = self.queue(queue)
        start, length = checks.pagination(self.get_query_argument("start", None),
                                         self.get_query_argument("length", None), min_length=1)
        statuses = self._statuses()
        totals = await asyncio.gather(*(self._page(queue, status, 0, 1, total=True) for status in statuses))
        counts = {status: page["total"] for status, page in zip(statuses, totals)}
        jobs, skip = [], start
        for status in statuses:
            if len(jobs) >= length:
                break
            if skip >= counts[status]:
                skip -= counts[status]
                continue
            page = await self._page(queue, status, skip, min(length - len(jobs), counts[status] - skip))
            jobs.extend(page["jobs"])
            skip = 0
        self.reply({"counts": counts, "jobs": [shape.job_json(r) for r in jobs[:length]], "start": start,
                    "length": length})

    def _statuses(self):
        text = self.get_query_argument("statuses", None) or ""
        statuses = [status for status in text.split(",") if status] or list(checks.STATUSES)
        for status in statuses:
            if status not in checks.STATUSES:
                raise checks.BullError(f"Invalid status: {status}")
        return list(dict.fromkeys(statuses))

    def _page(self, queue, status, offset, limit, total=False):
        return self.broker.list_jobs(namespace=shape.NAMESPACE, queue=queue, limit=limit, offset=offset,
                                     total=total, order=STATUS_ORDER.get(status, "-created"),
                                     **shape.STATUS_QUERIES[status])


class JobHandler(BullHandler):
    """``GET /queues/<q>/jobs/<id>``: the job as JobJson."""

    async def get(self, queue, bull_id):
        queue = self.queue(queue)
        self.reply(shape.job_json(await self.find(queue, bull_id)))


class LockHandler(BullHandler):
    """A route the endpoint running a job calls: its lock token as ``Bearer`` stands in for an API token.

    A presented Bearer that is not an API token is taken as the lock token and checked by the
    broker (401 unless that attempt holds the job now), with or without API tokens configured,
    so that a stale attempt never writes over a later one.
    """

    def initialize(self):
        super().initialize()
        self.lock = None

    async def prepare(self):
        if self.request.method == "POST":
            token = presented_token(self.request.headers.get("Authorization"))
            tokens = self.application.tokens
            if token is not None and not (tokens and token_matches(token, tokens)):
                self.lock = token.decode("latin-1")
                self.open_methods = frozenset({"POST"})  # the broker checks the lock instead
        await super().prepare()

    async def note(self, queue, bull_id, **changes):
        queue = self.queue(queue)
        record = await self.find(queue, bull_id)
        await self.broker.note(record["id"], lock=self.lock, namespace=shape.NAMESPACE, **changes)
        self.ok()


class ProgressHandler(LockHandler):
    """``POST /queues/<q>/jobs/<id>/progress``: body a JSON number or object."""

    async def post(self, queue, bull_id):
        progress = self.json_body()
        if isinstance(progress, bool) or not isinstance(progress, (int, float, dict)):
            raise checks.BullError(f"Invalid progress {checks.js(progress)}, must be a number or an object")
        await self.note(queue, bull_id, progress=progress)


class LogsHandler(LockHandler):
    """``POST /queues/<q>/jobs/<id>/logs`` appends a line (a JSON string); ``GET`` answers ``{count, logs}``."""

    async def post(self, queue, bull_id):
        line = self.json_body()
        if not isinstance(line, str):
            raise checks.BullError(f"Invalid log {checks.js(line)}, must be a string")
        await self.note(queue, bull_id, logs=[line])

    async def get(self, queue, bull_id):
        queue = self.queue(queue)
        start, length = checks.pagination(self.get_query_argument("start", None),
                                         self.get_query_argument("length", None))
        logs = (await self.find(queue, bull_id)).get("logs") or []
        self.reply({"count": len(logs), "logs": logs[start:start + length]})


class WorkersHandler(BullHandler):
    """``POST /workers`` registers (or replaces) a queue's endpoint; ``GET /workers`` maps queues to URLs."""

    async def post(self):
        worker = checks.check_worker(self.json_body())
        await self.broker.set_endpoint(shape.NAMESPACE, worker["queue"], worker["url"], worker["method"],
                                       worker["headers"], worker["timeout"], worker["concurrency"])
        self.ok()

    async def get(self):
        endpoints = (await self.broker.list_endpoints(shape.NAMESPACE))["endpoints"]
        self.reply({endpoint["queue"]: endpoint["url"] for endpoint in endpoints})


class WorkerHandler(BullHandler):
    """``DELETE /workers/<q>``: the queue's jobs wait until an endpoint is registered again."""

    async def delete(self, queue):
        try:
            await self.broker.delete_endpoint(shape.NAMESPACE, queue)
        except (JobNotFound, ValidationError):
            raise checks.BullError("Worker not found", 404) from None
        self.ok()


def routes():
    """The BullMQ proxy API's Tornado rules."""
    return routes_with_slash([
        (r"/queues/([^/]+)/jobs", JobsHandler),
        (r"/queues/([^/]+)/jobs/([^/]+)", JobHandler),
        (r"/queues/([^/]+)/jobs/([^/]+)/progress", ProgressHandler),
        (r"/queues/([^/]+)/jobs/([^/]+)/logs", LogsHandler),
        (r"/workers", WorkersHandler),
        (r"/workers/([^/]+)", WorkerHandler),
    ])
