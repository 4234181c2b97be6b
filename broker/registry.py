"""Connected workers: what each serves, its credit, its leases and its liveness.

Workers announce themselves with READY (kinds, queues, credit). Each holds at most
``credit`` jobs at once; a result frees one. A worker silent for the liveness
period is lost: the broker takes its leases back (see ``WorkerLink.lose``). Every
lease remembers which JOBS message carried it, so a heartbeat saying "I hold these,
after n JOBS messages" shows which leases the worker no longer has (see
``WorkerLink.reconcile``). READY bodies are checked by :mod:`tubeway.broker.wire` first.
"""
import time


class Worker:
    """One connected worker process, known by its ROUTER identity."""

    def __init__(self, identity, kinds, queues, credit, info, now):
        self.identity = identity
        self.info = info
        # Stored as the job's ``worker``: says where a job runs, and is unique per connection.
        self.name = f"{info.get('host') or '?'}/{info.get('pid') or 0}/{identity.hex()[-8:]}"[-64:]
        self.kinds = frozenset(kinds)
        self.queues = frozenset(queues) if queues else None
        self.credit = credit
        self.leases = {}
        self.started = set()  # ids of leased jobs the worker said it began
        self.jobs_sent = 0  # JOBS messages sent to this connection
        self.sent_in = {}  # job id -> the number of the JOBS message that carried its lease
        self.last_seen = now
        self.next_heartbeat = now

    def lease(self, record):
        """Hold ``record``'s lease; it travels in the next JOBS message (see :meth:`sent_jobs`)."""
        self.leases[record["id"]] = record
        self.sent_in[record["id"]] = self.jobs_sent + 1

    def sent_jobs(self):
        """A JOBS message carrying the leases added since the last one is on its way."""
        self.jobs_sent += 1

    def drop_lease(self, job_id):
        """Forget a lease (ended, taken back or cancelled)."""
        self.leases.pop(job_id, None)
        self.started.discard(job_id)
        self.sent_in.pop(job_id, None)

    def missing(self, held, seen):
        """Leases the worker should know of (carried by one of its first ``seen`` JOBS) but does not hold."""
        return [record for job_id, record in self.leases.items()
                if job_id not in held and self.sent_in.get(job_id, seen + 1) <= seen]

    @property
    def room(self):
        """How many more jobs this worker may hold."""
        return self.credit - len(self.leases)


class Registry:
    """All live workers, with heartbeat bookkeeping."""

    def __init__(self, liveness, heartbeat, clock=time.monotonic):
        self.liveness = liveness
        self.heartbeat = heartbeat
        self.clock = clock
        self.workers = {}

    def __len__(self):
        return len(self.workers)

    def add(self, identity, body):
        """Register (or re-register) a worker from its READY body (checked by ``wire.check_ready``)."""
        worker = Worker(identity, body["kinds"], body.get("queues"), body.get("credit", 1),
                        {"pid": body.get("pid"), "host": body.get("host")}, self.clock())
        self.workers[identity] = worker
        return worker

    def get(self, identity):
        """The worker with this identity, or None."""
        return self.workers.get(identity)

    def seen(self, identity):
        """Note a message from a worker; returns it, or None if unknown."""
        worker = self.workers.get(identity)
        if worker is not None:
            worker.last_seen = self.clock()
        return worker

    def remove(self, identity):
        """Forget a worker; returns it (with its leases) or None."""
        return self.workers.pop(identity, None)

    def lost(self):
        """Workers silent for longer than the liveness period."""
        limit = self.clock() - self.liveness
        return [w for w in self.workers.values() if w.last_seen < limit]

    def heartbeat_due(self):
        """Workers due a heartbeat from the broker; their next one is scheduled."""
        now = self.clock()
        due = [w for w in self.workers.values() if w.next_heartbeat <= now]
        for worker in due:
            worker.next_heartbeat = now + self.heartbeat
        return due

    def with_room(self):
        """Workers that may take more jobs."""
        return [w for w in self.workers.values() if w.room > 0]

    def kinds(self):
        """Every job kind some worker serves."""
        return sorted(set().union(*(w.kinds for w in self.workers.values()))) if self.workers else []
