"""A worker process's job threads: run jobs off the socket thread, enforce timeouts, spot stuck jobs.

:class:`JobRunner` runs jobs on ``threads`` shared daemon threads, plus a pool of
threads of its own for each kind declaring a ``concurrency`` (so sixteen slow HTTP
calls never hold up CPU kinds, and the reverse), and reports each job's result
exactly once through ``on_result`` (called from any thread). A job past its
timeout is reported failed at its deadline by a monitor thread, and its context is
cancelled; a Python thread cannot be killed, so if it is still running ``grace``
seconds later ``on_stuck`` is called and the worker process should exit (its pool
starts a fresh one).
"""
import collections
import math
import logging
import threading
import time

from tubeway.workers.executor import JobContext, execute_job, timed_out_result

log = logging.getLogger("tubeway.worker")

#: Seconds a timed-out job may keep its thread before the process gives up on it.
STUCK_GRACE = 5.0
#: Seconds of work a worker process asks to hold ahead of its threads (see JobRunner.credit).
BUFFER_SECONDS = 0.05
AVERAGE_WEIGHT = 0.1


class _Running:
    """One job on a thread: its context, and whether its result was already reported."""

    __slots__ = ("job", "context", "reported", "stuck")

    def __init__(self, job, context):
        self.job = job
        self.context = context
        self.reported = False
        self.stuck = False


class _Lane:
    """A pool of job threads: the shared one, or one kind's own; its queue and how long its jobs take."""

    __slots__ = ("name", "threads", "pending", "ready", "average_seconds")

    def __init__(self, name, threads, lock):
        self.name = name
        self.threads = threads
        self.pending = collections.deque()
        self.ready = threading.Condition(lock)
        self.average_seconds = None  # moving average of how long a job takes

    def observe(self, seconds):
        average = self.average_seconds
        self.average_seconds = seconds if average is None else average + (seconds - average) * AVERAGE_WEIGHT

    def credit(self):
        """Jobs to hold for this pool: two per thread untimed, else BUFFER_SECONDS of work, at least one per thread."""
        if self.average_seconds is None:
            return self.threads * 2
        return max(self.threads, math.ceil(self.threads * BUFFER_SECONDS / max(self.average_seconds, 1e-6)))


class JobRunner:
    """Jobs waiting and running in one worker process.

    ``kind_threads`` maps kinds to the size of their own pools; by default it is
    ``pm.kind_concurrency()``. Every other kind runs on the ``threads`` shared ones.
    """

    def __init__(self, pm, settings, threads, on_result, on_stuck=None, grace=STUCK_GRACE, on_started=None,
                 kind_threads=None):
        self.pm = pm
        self.settings = settings
        self.on_result = on_result
        self.on_started = on_started or (lambda job: None)
        self.on_stuck = on_stuck or (lambda job, seconds: None)
        self.grace = grace
        self._running = set()
        self._owed = 0  # results claimed by a job thread or the monitor and not yet handed to on_result
        self._lock = threading.Lock()
        self._monitor_wake = threading.Condition(self._lock)
        self._stopped = False
        if kind_threads is None:
            kind_threads = pm.kind_concurrency()
        self._shared = _Lane("shared", threads, self._lock)
        self._by_kind = {kind: _Lane(kind, count, self._lock) for kind, count in kind_threads.items() if count}
        self._lanes = [self._shared, *self._by_kind.values()]
        #: Job threads in all pools.
        self.threads = sum(lane.threads for lane in self._lanes)
        self._threads = [threading.Thread(target=self._work, args=(lane,), name=f"job-{lane.name}-{n}", daemon=True)
                         for lane in self._lanes for n in range(lane.threads)]
        self._threads.append(threading.Thread(target=self._monitor, name="job-timeouts", daemon=True))

    def kind_threads(self):
        """Kinds running on threads of their own: ``{kind: threads}``."""
        return {kind: lane.threads for kind, lane in self._by_kind.items()}

    def start(self):
        """Start the threads."""
        for thread in self._threads:
            thread.start()

    def submit(self, job):
        """Queue a job to run on the next free thread of its kind's pool (or of the shared one)."""
        lane = self._by_kind.get(job.get("kind"), self._shared)
        with self._lock:
            lane.pending.append(job)
            lane.ready.notify()

    @property
    def busy(self):
        """Jobs waiting or running whose result is not handed to ``on_result`` yet."""
        with self._lock:
            return sum(len(lane.pending) for lane in self._lanes) + self._owed

    def drop_pending(self):
        """Forget jobs not started yet (the worker is stopping); returns them."""
        with self._lock:
            dropped = []
            for lane in self._lanes:
                dropped.extend(lane.pending)
                lane.pending.clear()
            return dropped

    def abort(self, job_ids):
        """Jobs the broker cancelled: drop them if waiting (returned), cancel them if running.

        A running one stops as soon as it checks its context's ``cancelled`` event, and
        its result is reported then, as any other: the broker ends a job it is cancelling
        only once its run has stopped. Returns the jobs dropped before they began.
        """
        ids = set(job_ids)
        dropped = []
        with self._lock:
            for lane in self._lanes:
                kept = [job for job in lane.pending if job.get("id") not in ids]
                if len(kept) != len(lane.pending):
                    dropped.extend(job for job in lane.pending if job.get("id") in ids)
                    lane.pending = collections.deque(kept)
            for entry in self._running:
                if entry.job.get("id") in ids and not entry.reported:
                    entry.context.cancelled.set()
        return dropped

    def stop(self):
        """Cancel what still runs without reporting it, and let the threads end; returns the jobs cancelled."""
        with self._lock:
            self._stopped = True
            cancelled = [entry.job for entry in self._running if not entry.reported]
            self._owed -= len(cancelled)
            for entry in self._running:
                entry.reported = True
                entry.context.cancelled.set()
            for lane in self._lanes:
                lane.pending.clear()
                lane.ready.notify_all()
            self._monitor_wake.notify_all()
        return cancelled

    def alive_threads(self):
        """Job threads still inside a job (after :meth:`stop`, the ones that ignored cancellation)."""
        with self._lock:
            return len(self._running)

    def _work(self, lane):
        while True:
            with self._lock:
                while not lane.pending and not self._stopped:
                    lane.ready.wait()
                if self._stopped:
                    return
                job = lane.pending.popleft()
                entry = _Running(job, JobContext(job, self.settings))
                self._running.add(entry)
                self._owed += 1
                if entry.context.deadline is not None:
                    self._monitor_wake.notify_all()
            self.on_started(job)
            started = time.monotonic()
            result = execute_job(self.pm, job, entry.context)
            lane.observe(time.monotonic() - started)
            with self._lock:
                self._running.discard(entry)
                reported, entry.reported = entry.reported, True
            if not reported:
                self._report(result)

    def credit(self, maximum):
        """How many jobs this process should hold: enough for ``BUFFER_SECONDS`` of work, within bounds.

        Each pool asks for its own share, from how long its jobs take: fast jobs earn a
        deep prefetch (no thread waits on a round trip to the broker), slow ones a
        shallow one (no process hoards jobs that another could start now), and never
        less than one job per thread, so every thread of every pool can be busy.
        """
        return max(1, min(maximum, sum(lane.credit() for lane in self._lanes)))

    def _report(self, result):
        try:
            self.on_result(result)
        finally:
            with self._lock:
                self._owed -= 1

    def _monitor(self):
        while True:
            with self._lock:
                while True:
                    if self._stopped:
                        return
                    expired, stuck, wait = self._due(time.monotonic())
                    if expired or stuck:
                        break
                    self._monitor_wake.wait(wait)
            for entry in expired:
                entry.context.cancelled.set()
                self._report(timed_out_result(self.pm, entry.job, entry.context))
            for entry in stuck:
                seconds = time.monotonic() - entry.context.started
                log.error("job %s (%s) still runs %.1f s after it started, past its timeout and %g s of grace",
                          entry.job.get("id"), entry.job.get("kind"), seconds, self.grace)
                self.on_stuck(entry.job, seconds)

    def _due(self, now):
        """Under the lock: entries past their deadline, entries stuck, and seconds to the next check."""
        expired, stuck, next_due = [], [], None
        for entry in self._running:
            deadline = entry.context.deadline
            if deadline is None:
                continue
            if not entry.reported:
                due = deadline
                if deadline <= now:
                    entry.reported = True
                    expired.append(entry)
                    due = deadline + self.grace
            elif not entry.stuck:
                due = deadline + self.grace
                if due <= now:
                    entry.stuck = True
                    stuck.append(entry)
                    continue
            else:
                continue
            next_due = due if next_due is None else min(next_due, due)
        return expired, stuck, None if next_due is None else max(0.0, next_due - now)
