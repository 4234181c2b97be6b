"""Client commands: one method per command of :mod:`tubeway.core.protocol`.

Each handler gets the request body and returns the reply data, raises a
:class:`~tubeway.core.errors.TubewayError`, or returns :data:`PARKED` when the
request waits (long-poll) and will be answered later.
"""
import logging

import orjson

from tubeway.core import protocol as p
from tubeway.core.errors import JobConflict, JobNotFound, LockRefused, TubewayError, ValidationError
from tubeway.core.job import STATES, check_metadata, storable
from tubeway.broker.job_filters import parse_filter
from tubeway.broker.lifecycle import HTTP_TAKER, public, wire_spec
from tubeway.broker.endpoint_commands import EndpointCommands
from tubeway.broker.schedule_commands import ScheduleCommands
from tubeway.broker.store.queries import count_jobs, read_page
from tubeway.broker.store.schedules import count_schedules

log = logging.getLogger("tubeway.broker")
PARKED = object()
MAX_WAIT = 3600.0
#: Most log lines one NOTE carries, and the longest line.
MAX_NOTE_LINES = 1000
MAX_LINE = 10_000


def count_all():
    """``(count_jobs(), count_schedules())``: what QUEUES and METRICS read off the loop."""
    return count_jobs(), count_schedules()


def queues_body(rows):
    """The QUEUES reply from ``count_jobs`` rows: every namespace and queue with a count per state."""
    queues = {}
    for namespace, queue, state, count in rows:
        entry = queues.setdefault((namespace, queue), {s: 0 for s in STATES})
        entry[state] = count
    return {"queues": [{"namespace": n, "queue": q, "counts": c} for (n, q), c in sorted(queues.items())]}


def _number(body, key, default, maximum=MAX_WAIT):
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValidationError(f"'{key}' must be a non-negative number", key)
    return min(float(value), maximum)


def _strings(body, key, required=False):
    value = body.get(key)
    if value is None and not required:
        return
    if not isinstance(value, list) or (required and not value) or not all(isinstance(i, str) for i in value):
        raise ValidationError(f"'{key}' must be a list of strings", key)


def page_body(query, records, total):
    """The LIST reply: the jobs, the cursor of the next page (order ``created`` without an offset), the total."""
    full = len(records) == query.limit
    next_cursor = str(records[-1]["seq"]) if full and query.order == "created" and not query.offset else None
    return {"jobs": [public(r) for r in records], "next_cursor": next_cursor, "total": total}


def _lease_length(record, default):
    """The length of the lease a running external job holds: the one it was taken or last extended with.

    Taking and extending both set ``updated_at`` with ``lease_until`` (nothing else
    writes an external job while it runs), so their difference is that length, and it
    survives a broker restart.
    """
    until, since = record.get("lease_until"), record.get("updated_at")
    if until is None or since is None or until < since:
        return float(default)
    return until - since


class ClientCommands:
    """Handlers of client requests, bound to the broker's lifecycle and caches."""

    def __init__(self, lifecycle, registry, metrics, waiters, clock, reads):
        self.jobs = lifecycle
        self.reads = reads
        self._counts_running = []  # requests answered by the count under way
        self._counts_next = []  # requests waiting for the next count
        self.store = lifecycle.store
        self.registry = registry
        self.metrics = metrics
        self.waiters = waiters
        self.clock = clock
        self.handlers = {
            p.SUBMIT: self.submit, p.GET: self.get, p.LIST: self.list, p.QUEUES: self.queues,
            p.RETRY: self.retry, p.CANCEL: self.cancel, p.METADATA: self.metadata, p.NOTE: self.note, p.DELETE: self.delete, p.TAKE: self.take,
            p.UPDATE: self.update, p.WAIT: self.wait, p.HEALTH: self.health, p.METRICS: self.render_metrics,
        }
        self.handlers.update(ScheduleCommands(lifecycle.schedules).handlers)
        self.handlers.update(EndpointCommands(lifecycle.endpoints).handlers)

    def record(self, body):
        """The live record a request names: by ``id`` (within ``namespace`` when given), or by its
        client-chosen ``unique_key`` within ``namespace``."""
        job_id, unique_key = body.get("id"), body.get("unique_key")
        if isinstance(unique_key, str) and storable(unique_key) and isinstance(body.get("namespace"), str):
            job_id = unique_key
            record = self.store.get_unique(body["namespace"], unique_key, now=self.clock())
        elif isinstance(job_id, str) and storable(job_id):
            record = self.store.get(job_id, now=self.clock())
        else:
            record = None
        if record is None or (body.get("namespace") and record["namespace"] != body["namespace"]):
            raise JobNotFound(f"job {job_id} not found")
        return record

    def submit(self, identity, request_id, body):
        """Store jobs (re-checked, so a bad client cannot write a half-formed row)."""
        jobs = body.get("jobs")
        if not isinstance(jobs, list) or not jobs:
            raise ValidationError("'jobs' must be a non-empty list", "jobs")
        specs = []
        for index, spec in enumerate(jobs):
            try:
                specs.append(wire_spec(spec))
            except ValidationError as error:
                raise ValidationError(error.message, error.field, index) from None
        try:
            ids, created, records = self.jobs.submit(specs)
        except TypeError as error:  # orjson could not encode a payload; the savepoint is rolled back
            raise ValidationError(f"a job's payload must be JSON: {error}", "payload") from None
        made = iter(records)
        sequences = [next(made)["sequence"] if new else None for new in created]
        return {"ids": ids, "created": created, "sequences": sequences,
                "created_at": records[0]["created_at"] if records else None}

    def get(self, identity, request_id, body):
        """One job."""
        return public(self.record(body))

    def list(self, identity, request_id, body):
        """A page of jobs (see :mod:`tubeway.broker.job_filters`), read off the loop: a keyset cursor, or an offset."""
        query, now = parse_filter(body), self.clock()

        def answer(page, error):
            if error is not None:
                log.error("listing jobs failed: %s", error)
                reply = p.failure(TubewayError(f"listing jobs failed: {error}"))
            else:
                reply = p.ok(page_body(query, *page))
            self.jobs.outbox.reply(identity, request_id, reply)
        self.reads.submit(lambda: read_page(query, now), answer)
        return PARKED

    def queues(self, identity, request_id, body):
        """Counts per state of every namespace and queue (counted off the loop)."""
        return self._answer_with_counts(identity, request_id, lambda counts: queues_body(counts[0]))

    def retry(self, identity, request_id, body):
        """Queue a failed or cancelled job again, with fresh attempts."""
        record = self.record(body)
        if record["state"] not in ("failed", "cancelled"):
            raise JobConflict(f"job {record['id']} is {record['state']}; only failed or cancelled jobs retry")
        now = self.clock()
        columns = {"state": "queued", "attempts": 0, "error": None, "result": None, "run_at": None,
                   "finished_at": None, "expires_at": None, "started_at": None, "updated_at": now}
        self.store.update(record["seq"], **columns)
        record.update(columns)
        self.jobs.queued_or_delayed(record)
        return public(record)

    def cancel(self, identity, request_id, body):
        """Cancel a job that has not ended."""
        record = self.record(body)
        if self.jobs.is_ended(record):
            raise JobConflict(f"job {record['id']} already ended ({record['state']})")
        self.jobs.cancel(record)
        return public(record)

    def note(self, identity, request_id, body):
        """Progress or log lines for a job from the holder of its attempt's ``lock`` (or, without one, a trusted caller)."""
        record = self.record(body)
        lock = body.get("lock")
        if lock is not None and not self.jobs.locks.holds(record, lock):
            raise LockRefused(f"that lock token does not hold job {record['id']} now")
        progress, logs = body.get("progress"), body.get("logs") or []
        try:
            orjson.dumps(progress)
        except TypeError as error:
            raise ValidationError(f"'progress' must be JSON: {error}", "progress") from None
        if not isinstance(logs, list) or len(logs) > MAX_NOTE_LINES \
                or not all(isinstance(line, str) and len(line) <= MAX_LINE and storable(line) for line in logs):
            raise ValidationError(f"'logs' must be a list of at most {MAX_NOTE_LINES} strings of at most "
                                  f"{MAX_LINE} characters", "logs")
        return public(self.jobs.note(record, progress, logs))

    def metadata(self, identity, request_id, body):
        """Change a job's labels and annotations (a ``None`` value removes its key)."""
        record = self.record(body)
        labels = check_metadata(body.get("labels"), "labels", removals=True)
        annotations = check_metadata(body.get("annotations"), "annotations", removals=True)
        return public(self.store.set_metadata(record, labels, annotations, self.clock()))

    def delete(self, identity, request_id, body):
        """Cancel (when not ended) and remove a job; the reply is the job as it was."""
        record = self.record(body)
        before = public(record)
        if not self.jobs.is_ended(record):
            self.jobs.left_running(record)
            self.jobs.abort(record["id"])
            self.jobs.dispatcher.forget(record["id"])
            self.jobs.reply_waiters(dict(record, state="cancelled"))
            self.jobs.schedules.run_ended(record)
            if record.get("parent"):  # a parent waiting for it must not wait forever
                self.jobs.groups.child_ended(dict(record, state="cancelled"))
        self.jobs.groups.forget(record["id"])
        self.store.delete(record["seq"])  # first: its children, cancelled next, find no parent to count for
        self.jobs.cancel_descendants(record)
        return before

    def take(self, identity, request_id, body):
        """Lease the next job of some ``kinds`` in a namespace to an HTTP taker, or park until one comes."""
        if not isinstance(body.get("namespace"), str):
            raise ValidationError("'namespace' must be a string", "namespace")
        _strings(body, "kinds", required=True)
        _strings(body, "queues")
        _number(body, "lease", None, maximum=10**9)
        block = _number(body, "block", 0.0)
        record = self.try_take(body)
        if record is not None or block <= 0:
            return record
        self.waiters.wait_take(identity, request_id, self.clock() + block, body)
        return PARKED

    def try_take(self, body):
        """Lease one external job matching a take request, or None."""
        queues = body.get("queues")
        items = self.jobs.dispatcher.take(set(body["kinds"]), body["namespace"], set(queues) if queues else None, 1)
        if not items:
            return None
        lease = body.get("lease")
        lease = float(lease) if lease is not None else float(self.jobs.settings.lease_seconds)
        return public(self.jobs.start(items, HTTP_TAKER, lease=lease)[0])

    def update(self, identity, request_id, body):
        """An external worker reports: done/failed end the job, running extends its lease."""
        record = self.record(body)
        state = body.get("state")
        if state not in ("done", "failed", "running"):
            raise ValidationError("'status' must be one of done, failed, running", "status")
        if body.get("error") is not None and not isinstance(body["error"], str):
            raise ValidationError("'error' must be a string", "error")
        try:
            orjson.dumps(body.get("result"))
        except TypeError as error:
            raise ValidationError(f"'result' must be JSON: {error}", "result") from None
        if self.jobs.is_ended(record):
            raise JobConflict(f"job {record['id']} already ended ({record['state']})")
        if state == "running":
            return public(self._extend(record, body))
        self.jobs.release(record["id"])
        self.jobs.finish(record, state, result=body.get("result"), error=body.get("error"))
        return public(record)

    def _extend(self, record, body):
        if record["state"] != "running":
            raise JobConflict(f"job {record['id']} is {record['state']}, not running")
        lease = _number(body, "lease", _lease_length(record, self.jobs.settings.lease_seconds), maximum=10**9)
        lease_until = self.clock() + lease
        self.store.update(record["seq"], lease_until=lease_until, updated_at=self.clock())
        self.jobs.timers["lease"].note(lease_until)
        record.update(lease_until=lease_until)
        return record

    def wait(self, identity, request_id, body):
        """The job once it ended, or parked until it does or the timeout passes."""
        record = self.record(body)
        timeout = _number(body, "timeout", 0.0)
        if self.jobs.is_ended(record) or timeout <= 0:
            return public(record)
        self.waiters.wait_result(record["id"], identity, request_id, self.clock() + timeout, body)
        return PARKED

    def health(self, identity, request_id, body):
        """How many workers are connected and what they run."""
        return {"workers": len(self.registry), "kinds": self.registry.kinds()}

    def render_metrics(self, identity, request_id, body):
        """The Prometheus exposition text (the job counts in it counted off the loop)."""
        return self._answer_with_counts(identity, request_id,
                                        lambda counts: {"text": self.metrics.render(*counts)})

    def _answer_with_counts(self, identity, request_id, answer):
        """Reply ``answer(counts)`` once ``count_all`` ran off the loop (see BackgroundReads).

        Every request gets a count begun after it arrived; requests arriving while one
        runs share the next, so a busy dashboard never queues up counts.
        """
        self._counts_next.append((identity, request_id, answer))
        if not self._counts_running:
            self._count_next()
        return PARKED

    def _count_next(self):
        self._counts_running, self._counts_next = self._counts_next, []
        self.reads.submit(count_all, self._counted)

    def _counted(self, rows, error):
        answered, self._counts_running = self._counts_running, []
        for identity, request_id, answer in answered:
            try:
                if error is not None:
                    raise error
                reply = p.ok(answer(rows))
            except Exception as exc:
                log.error("counting jobs failed: %s", exc)
                reply = p.failure(TubewayError(f"counting jobs failed: {exc}"))
            self.jobs.outbox.reply(identity, request_id, reply)
        if self._counts_next:
            self._count_next()
