"""Job state transitions: queue, start, finish, retry, re-queue; the broker's one source of them.

Every transition writes storage first and then updates the in-memory caches
(ready windows, timers, leases), and queues what must be sent (results to
long-poll waiters, callback jobs) on the outbox, which the reactor sends only
after the transaction commits.
"""
import logging
import math

from tubeway.core import protocol as p
from tubeway.core.errors import ValidationError
from tubeway.core.job import (
    BACKOFF_TYPES, ENDED, MAX_ID, MAX_NAME, MAX_PRIORITY, State, backoff_delay, normalize_backoff, normalize_spec,
)
from tubeway.broker.groups import Groups
from tubeway.broker.endpoints import PUSH_KIND, Endpoints
from tubeway.broker.locks import Locks, load_key
from tubeway.broker.schedules import Schedules

log = logging.getLogger(__name__)

HTTP_TAKER = "http"
CALLBACK_NAMESPACE = "_system"
CALLBACK_QUEUE = "callbacks"


class Lifecycle:
    """State transitions of jobs, shared by client commands, worker results and timers."""

    def __init__(self, store, dispatcher, timers, waiters, metrics, outbox, settings, clock):
        self.store = store
        self.dispatcher = dispatcher
        self.timers = timers
        self.waiters = waiters
        self.metrics = metrics
        self.outbox = outbox
        self.settings = settings
        self.clock = clock
        self.leases = {}  # job id -> the registry Worker holding it
        self.locks = Locks(load_key())
        self.endpoints = Endpoints(clock)
        dispatcher.gate, dispatcher.gated_kinds = self.endpoints.room, {PUSH_KIND}
        self.groups = Groups(self)
        self.schedules = Schedules(self)

    # -- entering the queue -----------------------------------------------------------------
    def submit(self, specs):
        """Store new jobs (unique keys honoured); returns ``(ids, created, records)``: the records made."""
        now = self.clock()
        ids, created, fresh = [None] * len(specs), [False] * len(specs), []
        existing = self._existing_unique(specs)
        for index, spec in enumerate(specs):
            key = (spec["namespace"], spec["unique_key"])
            if spec["unique_key"] is not None and key in existing:
                ids[index] = existing[key]
                continue
            fresh.append(index)
            if spec["unique_key"] is not None:
                existing[key] = index
        records = self.store.insert([specs[i] for i in fresh], now)
        for index, record in zip(fresh, records):
            ids[index], created[index] = record["id"], True
        for index, spec in enumerate(specs):
            if isinstance(ids[index], int):
                ids[index] = ids[ids[index]]
        for record in records:
            self.entered(record)
        return ids, created, records

    def _existing_unique(self, specs):
        keyed = {}
        for spec in specs:
            if spec["unique_key"] is not None:
                keyed.setdefault(spec["namespace"], set()).add(spec["unique_key"])
        existing = {}
        for namespace, keys in keyed.items():
            for key, job_id in self.store.existing_unique(namespace, keys).items():
                existing[(namespace, key)] = job_id
        return existing

    def entered(self, record):
        """A stored record is now queued or delayed: let the window or the delay timer know."""
        self.metrics.enqueued(record)
        self.queued_or_delayed(record)

    def queued_or_delayed(self, record):
        """Route a queued record to its window, a delayed one to the delay timer."""
        if record["state"] == State.QUEUED:
            self.dispatcher.queued(record)
        else:
            self.timers["delayed"].note(record["run_at"])

    def release_delayed(self, now):
        """Delayed jobs that are due become queued."""
        records = self.timers["delayed"].take_due(now)
        for record in records:
            self.store.update(record["seq"], state="queued", updated_at=now)
            record["state"] = "queued"
            self.dispatcher.queued(record)

    # -- starting ---------------------------------------------------------------------------
    def start(self, items, worker_name, lease=None):
        """Mark the jobs of these window keys running; returns their records."""
        now = self.clock()
        seqs = [abs(item[1]) for item in items]  # a key's rank is its seq, negated for a lifo job
        lease_until = now + lease if lease is not None else None
        records = self.store.start(seqs, worker_name, now, lease_until)
        for record in records:
            self.metrics.dispatched(record, now)
            record["lock"] = self.locks.token(record)
            if record["kind"] == PUSH_KIND:
                record["endpoint"] = self.endpoints.get(record["namespace"], record["queue"])
                self.endpoints.started(record)
        if lease_until is not None:
            self.timers["lease"].note(lease_until)
        deadlines = {r["seq"]: now + r["timeout"] for r in records
                     if r["timeout"] is not None and worker_name == HTTP_TAKER}
        if deadlines:
            self.store.set_deadlines(deadlines)
            self.timers["deadline"].note(min(deadlines.values()))
        return records

    def note(self, record, progress=None, logs=()):
        """Progress and log lines a job's holder sends while it runs: progress set, lines appended.

        The leased copy (what the worker's result will end) learns them too, so its end keeps them.
        """
        now = self.clock()
        columns = {"updated_at": now}
        if progress is not None:
            columns["progress"] = progress
        if logs:
            columns["logs"] = ((record.get("logs") or []) + list(logs))[:MAX_LOG_LINES]
        self.store.update(record["seq"], **columns)
        record.update(columns)
        worker = self.leases.get(record["id"])
        leased = worker.leases.get(record["id"]) if worker is not None else None
        if leased is not None:
            leased.update(columns)
        return record

    # -- ending -----------------------------------------------------------------------------
    def finish(self, record, state, result=None, error=None, logs=None, progress=None):
        """End a job (done, failed or cancelled): store it, wake waiters, fire its callback."""
        self.left_running(record)
        now = self.clock()
        ttl = record.get("result_ttl")
        expires_at = now + ttl if ttl is not None else None
        columns = {"state": state, "result": result, "error": error, "finished_at": now,
                   "updated_at": now, "expires_at": expires_at, "lease_until": None, "deadline": None}
        if logs:
            columns["logs"] = (record.get("logs") or []) + list(logs)
        if progress is not None:
            columns["progress"] = progress
        self.store.update(record["seq"], **columns)
        record.update(columns)
        record.pop("deadline", None)
        self.release(record["id"])
        self.dispatcher.forget(record["id"])
        self.timers["expiry"].note(expires_at)
        self.metrics.finished(record)
        self.reply_waiters(record)
        self.schedules.run_ended(record)
        if record.get("parent"):
            self.groups.child_ended(record)
        elif state == "failed" and record.get("origin"):
            self.groups.spawned_failed(record)
        if record.get("callback_url") and record["namespace"] != CALLBACK_NAMESPACE:
            self._callback(record)
        self._retain(record)

    def _retain(self, record):
        """Honour ``keep_done`` / ``keep_failed``: keep only the newest N such ended jobs of the queue."""
        column = {"done": "keep_done", "failed": "keep_failed"}.get(record["state"])
        keep = record.get(column) if column else None
        if keep is not None:
            self.store.prune_ended(record["namespace"], record["queue"], record["state"], column, keep)

    def left_running(self, record):
        """A job leaves the running (or cancelling) state: a ``push`` job frees its queue's room."""
        if record["kind"] == PUSH_KIND and record["state"] in ("running", "cancelling"):
            self.endpoints.ended(record)

    def reply_waiters(self, record):
        """Answer every long-poll parked on this job."""
        for waiter in self.waiters.ended(record["id"]):
            self.outbox.reply(waiter.identity, waiter.request_id, p.ok(public(record)))

    def _callback(self, record):
        spec = normalize_spec({
            "namespace": CALLBACK_NAMESPACE, "queue": CALLBACK_QUEUE, "kind": "callback",
            "payload": {"url": record["callback_url"], "job": public(record)},  # the worker shapes the body
            "attempts": int(getattr(self.settings, "callback_attempts", 5)),
            "backoff": {"type": "exponential", "delay": 1.0, "max_delay": 60.0},
            "labels": {"job": record["id"]},
        })
        self.submit([spec])

    def fail_or_retry(self, record, error, retry=True, logs=None, progress=None):
        """A failed attempt: retry after the job's backoff while attempts remain, else fail it."""
        if record["state"] == "cancelling":
            self.stopped_cancelling(record, logs, progress)
            return
        if not retry or record["attempts"] >= record["max_attempts"]:
            self.finish(record, "failed", error=error, logs=logs, progress=progress)
            return
        now = self.clock()
        delay = backoff_delay(record["backoff"], record["attempts"])
        self.requeue(record, error=error, run_at=now + delay if delay > 0 else None, logs=logs)

    def requeue(self, record, error=None, run_at=None, logs=None):
        """Put a job back in the queue (or the delay queue), its lease dropped."""
        self.left_running(record)
        now = self.clock()
        state = "delayed" if run_at is not None else "queued"
        columns = {"state": state, "run_at": run_at, "worker": None, "lease_until": None, "deadline": None,
                   "updated_at": now}
        if error is not None:
            columns["error"] = error
        if logs:
            columns["logs"] = (record.get("logs") or []) + list(logs)
        self.store.update(record["seq"], **columns)
        record.update(columns)
        record.pop("deadline", None)
        self.release(record["id"])
        self.queued_or_delayed(record)

    def abort(self, *job_ids):
        """Tell the workers holding these jobs that they were cancelled or deleted (one message each), drop the leases."""
        by_worker = {}
        for job_id in job_ids:
            worker = self.leases.get(job_id)
            if worker is not None:
                by_worker.setdefault(worker.identity, []).append(job_id)
            self.release(job_id)
        for identity, ids in by_worker.items():
            self.outbox.to_worker(identity, p.ABORT, {"ids": ids})

    def release(self, job_id):
        """Drop a worker's lease on a job, if a worker holds it."""
        worker = self.leases.pop(job_id, None)
        if worker is not None:
            worker.drop_lease(job_id)

    def give_back(self, record):
        """Queue a leased job again without counting the attempt it never began."""
        if record["state"] == "cancelling":
            self.stopped_cancelling(record)
            return
        record["attempts"] = max(0, record["attempts"] - 1)
        self.store.update(record["seq"], attempts=record["attempts"])
        self.requeue(record)

    def completed(self, record, result):
        """A worker's ``done`` result: store its spawned jobs, then end the job or make it wait for children."""
        if record["state"] == "cancelling":  # what it spawned is not wanted either
            self.stopped_cancelling(record, result.get("logs"), result.get("progress"))
            return
        spawn = result.get("spawn")
        if spawn:
            origin = record.get("origin") or record["id"]
            self.submit([dict(wire_spec(spec), origin=origin) for spec in spawn])
        logs, progress = result.get("logs"), result.get("progress")
        awaiting = result.get("await")
        if isinstance(awaiting, int) and not isinstance(awaiting, bool) and awaiting > 0:
            self.groups.start(record, awaiting, result=result.get("result"), logs=logs)
        else:
            self.finish(record, "done", result=result.get("result"), logs=logs, progress=progress)

    def cancel(self, record):
        """Cancel a job that has not ended, and with it every job it is waiting for or has spawned.

        A job a worker process runs becomes ``cancelling``: the worker is told to stop
        it, and it ends ``cancelled`` when the worker answers that it stopped (or is lost).
        Any other ends ``cancelled`` at once.
        """
        if record["state"] == "cancelling":
            return
        worker = self.leases.get(record["id"])
        if record["state"] == "running" and worker is not None:
            self._begin_cancelling(record, worker)
        else:
            self.abort(record["id"])
            self.finish(record, "cancelled", error="cancelled")
            self.groups.cancelled(record["id"])
        self.cancel_descendants(record)

    def _begin_cancelling(self, record, worker):
        now = self.clock()
        self.store.update(record["seq"], state="cancelling", updated_at=now)
        record.update(state="cancelling", updated_at=now)
        leased = worker.leases.get(record["id"])
        if leased is not None:
            leased.update(state="cancelling", updated_at=now)
        self.outbox.to_worker(worker.identity, p.ABORT, {"ids": [record["id"]]})

    def stopped_cancelling(self, record, logs=None, progress=None):
        """A ``cancelling`` job's run stopped (whatever it answered), or its worker is gone: it ends cancelled."""
        self.finish(record, "cancelled", error="cancelled", logs=logs, progress=progress)
        self.groups.cancelled(record["id"])

    def cancel_descendants(self, record):
        """Cancel the jobs a job is waiting for or has spawned, so none of its work goes on without it.

        Those are the unended jobs naming it as ``parent`` or ``origin`` (its whole
        spawn tree), then theirs in turn for the ones waiting for children (running
        without a worker: only a job that ran to its end can have spawned jobs).
        Workers running any of them are told to stop them, one message per worker.
        """
        pending = [record["id"]]
        while pending:
            descendants = self.store.unended_descendants(pending.pop())
            self.abort(*[descendant["id"] for descendant in descendants])
            for descendant in descendants:
                if descendant["state"] == "running" and descendant["worker"] is None:
                    pending.append(descendant["id"])
                self.finish(descendant, "cancelled", error=f"cancelled with job {record['id']}")
                self.groups.cancelled(descendant["id"])

    def is_ended(self, record):
        """True if the record's state is final."""
        return record["state"] in ENDED


#: Record keys clients never see: storage's own, and the holder's lock token.
PRIVATE = frozenset({"seq", "deadline", "rank", "lock", "endpoint"})
#: Most log lines a job keeps (the worker's executor keeps as many).
MAX_LOG_LINES = 1000


def public(record):
    """A record as clients see it (internal columns dropped)."""
    return {k: v for k, v in record.items() if k not in PRIVATE}


NORMALIZED_KEYS = frozenset(normalize_spec({"kind": "noop"}))
BACKOFF_KEYS = frozenset(normalize_backoff(None))


def _is_name(value):
    return type(value) is str and 0 < len(value) <= MAX_NAME and "\x00" not in value


def _is_seconds(value):
    return value is None or (type(value) is float and 0 <= value < math.inf) or (type(value) is int and 0 <= value < 2**53)


def _is_normalized(spec):
    """True for a spec of exactly ``normalize_spec``'s shape whose every field has a type and range it gives.

    About a fifth of the cost of normalizing again, on the submit path; a spec with a
    callback URL or labels is always normalized again.
    """
    if spec.keys() != NORMALIZED_KEYS or spec["callback_url"] is not None or spec["labels"] \
            or spec["annotations"]:
        return False
    name = spec["name"]
    priority, attempts, backoff = spec["priority"], spec["max_attempts"], spec["backoff"]
    unique_key, parent = spec["unique_key"], spec["parent"]
    return (_is_name(spec["namespace"]) and _is_name(spec["queue"]) and _is_name(spec["kind"])
            and type(priority) is int and -MAX_PRIORITY <= priority <= MAX_PRIORITY
            and type(attempts) is int and 1 <= attempts <= 10000
            and _is_seconds(spec["run_at"]) and _is_seconds(spec["timeout"]) and _is_seconds(spec["result_ttl"])
            and type(backoff) is dict and backoff.keys() == BACKOFF_KEYS and backoff["type"] in BACKOFF_TYPES
            and _is_seconds(backoff["delay"]) and _is_seconds(backoff["max_delay"])
            and type(backoff["jitter"]) is bool and type(spec["labels"]) is dict
            and (unique_key is None or _is_name(unique_key)) and (name is None or _is_name(name))
            and type(spec["lifo"]) is bool and spec["keep_done"] is None and spec["keep_failed"] is None
            and (parent is None or (type(parent) is str and len(parent) <= MAX_ID and "\x00" not in parent)))


def wire_spec(spec):
    """Check a job spec that came over the wire; normalize it again unless it already is.

    Front ends and workers send specs made by ``normalize_spec``; one of that exact
    shape, every field of the type and range it gives, is taken as is. Anything else
    is normalized afresh (raising :class:`ValidationError` naming the field).
    """
    if not isinstance(spec, dict):
        raise ValidationError("a job must be an object")
    if _is_normalized(spec):
        return spec
    wire = dict(spec)
    wire["attempts"] = wire.pop("max_attempts", wire.get("attempts", 1))
    if wire.get("run_at") is None:
        wire.pop("run_at", None)
    return normalize_spec(wire)
