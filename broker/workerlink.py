"""The broker's side of the worker protocol: READY, HEARTBEAT, RESULTS, DISCONNECT, and dispatch.

Every message is checked whole (:mod:`tubeway.broker.wire`) before any of it is
applied; each result is applied in a savepoint of its own.
"""
import logging
import math

import orjson

from tubeway.core import protocol as p
from tubeway.core.errors import ValidationError
from tubeway.broker.lifecycle import wire_spec
from tubeway.broker.wire import DropLog, check_worker_message

log = logging.getLogger("tubeway.broker")
#: Unknown peers remembered as told to register (pruned of old ones past this).
MAX_ASKED = 10000


def refusal(result):
    """Why the broker cannot store a well-formed result (a value JSON cannot hold, a bad spawned job), or None."""
    for key in ("result", "progress"):
        try:
            orjson.dumps(result.get(key))
        except TypeError as error:
            return f"'{key}' is not JSON: {error}"
    if result["state"] != "done" or not result.get("spawn"):
        return None
    try:
        specs = [wire_spec(spec) for spec in result["spawn"]]
        for spec in specs:
            orjson.dumps(spec["payload"])
    except ValidationError as error:
        return f"a spawned job is invalid: {error.message}"
    except TypeError as error:
        return f"a spawned job's payload is not JSON: {error}"
    result["spawn"] = specs
    return None


class WorkerLink:
    """Handles worker messages and hands ready jobs to workers with credit."""

    def __init__(self, lifecycle, registry, outbox, clock):
        self.jobs = lifecycle
        self.registry = registry
        self.outbox = outbox
        self.clock = clock
        self.drops = DropLog(log)
        self._asked = {}  # identity -> when an unknown peer was last told to register

    def handle(self, identity, command, raw):
        """One message from a worker; a malformed one is logged (rate-limited) and dropped whole."""
        try:
            body = p.unpack(raw) if raw else {}
            check_worker_message(command, body)
        except ValueError as error:
            self.drops.dropped_message(identity, f"worker {command[:32]!r}: {error}")
            return
        if command == p.READY:
            self._ready(identity, body)
            return
        worker = self.registry.seen(identity)
        if worker is None:
            if command != p.DISCONNECT:
                self._ask_to_register(identity)
            return
        if command == p.RESULTS:
            self._note_started(worker, body.get("started"))
            self._results(worker, body.get("results") or [])
            if body.get("credit") is not None:
                worker.credit = body["credit"]
        elif command == p.HEARTBEAT and "held" in body:
            self.reconcile(worker, set(body["held"] or ()), body.get("seen") or 0)
        elif command == p.DISCONNECT:
            self.lose(worker, "worker disconnected")

    def _ask_to_register(self, identity):
        """DISCONNECT an unknown peer (it registers again), once per liveness period.

        After a broker restart a worker's queued messages all arrive from an identity
        the broker does not know; one DISCONNECT for the lot, not one each, so the
        worker registers once instead of again and again (each time giving back jobs).
        """
        now = self.clock()
        if now - self._asked.get(identity, -math.inf) < self.registry.liveness:
            return
        if len(self._asked) >= MAX_ASKED:
            self._asked = {i: t for i, t in self._asked.items() if now - t < self.registry.liveness}
        self._asked[identity] = now
        self.outbox.to_worker(identity, p.DISCONNECT)

    def _ready(self, identity, body):
        old = self.registry.remove(identity)
        if old is not None:
            self._take_back(old, "worker registered again")
        worker = self.registry.add(identity, body)
        log.info("worker %s connected (pid %s on %s; kinds %s; credit %d)", worker.name,
                 worker.info["pid"], worker.info["host"], ",".join(sorted(worker.kinds)), worker.credit)

    @staticmethod
    def _note_started(worker, started):
        for job_id in started if isinstance(started, list) else ():
            if job_id in worker.leases:
                worker.started.add(job_id)

    def _results(self, worker, results):
        with self.jobs.store.atomic():
            for result in results:
                record = worker.leases.get(result["id"])
                if record is None or record["attempts"] != result["attempt"] \
                        or result.get("lease", record["started_at"]) != record["started_at"]:
                    continue  # a lease this worker no longer holds (cancelled, or the job went elsewhere)
                problem = refusal(result)
                if problem is None:
                    self._apply(record, result)
                    continue
                log.warning("job %s: worker %s sent a result the broker refuses: %s", record["id"], worker.name,
                            problem)
                self.jobs.fail_or_retry(record, f"refused result: {problem}", retry=False)

    def _apply(self, record, result):
        logs, progress = result.get("logs"), result.get("progress")
        if result["state"] == p.RETURNED:
            self.jobs.give_back(record)
        elif result["state"] == "done":
            self.jobs.completed(record, result)
        else:
            retry = result.get("retry") is not False
            self.jobs.fail_or_retry(record, result.get("error") or "failed", retry, logs, progress)

    def reconcile(self, worker, held, seen):
        """A heartbeat named the jobs the worker holds: leases it should know of and lacks lost their result."""
        missing = worker.missing(held, seen)
        if missing:
            log.warning("worker %s no longer holds %d of its leased jobs (results lost); they go back",
                        worker.name, len(missing))
        for record in missing:
            if record["id"] in worker.started:
                self.jobs.fail_or_retry(record, "the worker's result was lost")
            else:
                self.jobs.give_back(record)

    def lose(self, worker, reason):
        """A worker is gone: forget it and take its leases back."""
        self.registry.remove(worker.identity)
        self._take_back(worker, reason)

    def _take_back(self, worker, reason):
        """A lost worker's leases: begun jobs count the attempt, unbegun ones go back as they were."""
        if worker.leases:
            log.warning("worker %s lost (%s); %d jobs go back (%d had started)", worker.name, reason,
                        len(worker.leases), len(worker.started))
        for record in list(worker.leases.values()):
            if record["id"] in worker.started:
                self.jobs.fail_or_retry(record, f"worker lost: {reason}")
            else:
                self.jobs.give_back(record)

    def check_liveness(self):
        """Lose workers that stopped heartbeating or whose socket is gone."""
        for identity in self.outbox.unreachable:
            worker = self.registry.get(identity)
            if worker is not None:
                self.lose(worker, "unreachable")
        self.outbox.unreachable.clear()
        for worker in self.registry.lost():
            self.lose(worker, f"silent for {self.registry.liveness:g} s")

    def dispatch(self):
        """Hand ready jobs to every worker with room, best first."""
        for worker in self.registry.with_room():
            items = self.jobs.dispatcher.take(worker.kinds, None, worker.queues, worker.room)
            if not items:
                continue
            records = self.jobs.start(items, worker.name)
            for record in records:
                worker.lease(record)
                self.jobs.leases[record["id"]] = worker
            worker.sent_jobs()
            self.outbox.to_worker(worker.identity, p.JOBS, {"jobs": records})

    def heartbeat(self):
        """Send heartbeats that are due (right after the outbox flushed)."""
        for worker in self.registry.heartbeat_due():
            self.outbox.to_worker(worker.identity, p.HEARTBEAT)
        self.outbox.flush()

