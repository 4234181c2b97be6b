"""A worker process's job threads: run jobs off the socket thread, enforce timeouts, spot stuck jobs.

:class:`JobRunner` runs jobs on ``threads`` daemon threads and reports each job's
result exactly once through ``on_result`` (called from any thread). A job past its
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


class JobRunner:
    """Jobs waiting and running in one worker process."""

    def __init__(self, pm, settings, threads, on_result, on_stuck=None, grace=STUCK_GRACE, on_started=None):
        self.pm = pm
        self.settings = settings
        self.threads = threads
        self.on_result = on_result
        self.on_started = on_started or (lambda job: None)
        self.average_seconds = None  # moving average of how long a job takes
        self.on_stuck = on_stuck or (lambda job, seconds: None)
        self.grace = grace
        self._pending = collections.deque()
        self._running = set()
        self._owed = 0  # results claimed by a job thread or the monitor and not yet handed to on_result
        self._lock = threading.Lock()
        self._work_ready = threading.Condition(self._lock)
        self._monitor_wake = threading.Condition(self._lock)
        self._stopped = False
        self._threads = [threading.Thread(target=self._work, name=f"job-{n}", daemon=True) for n in range(threads)]
        self._threads.append(threading.Thread(target=self._monitor, name="job-timeouts", daemon=True))

    def start(self):
        """Start the threads."""
        for thread in self._threads:
            thread.start()

    def submit(self, job):
        """Queue a job to run on the next free thread."""
        with self._lock:
            self._pending.append(job)
            self._work_ready.notify()

    @property
    def busy(self):
        """Jobs waiting or running whose result is not handed to ``on_result`` yet."""
        with self._lock:
            return len(self._pending) + self._owed

    def drop_pending(self):
        """Forget jobs not started yet (the worker is stopping); returns them."""
        with self._lock:
            dropped = list(self._pending)
            self._pending.clear()
            return dropped

    def stop(self):
        """Cancel what still runs without reporting it, and let the threads end; returns the jobs cancelled."""
        with self._lock:
            self._stopped = True
            self._pending.clear()
            cancelled = [entry.job for entry in self._running if not entry.reported]
            self._owed -= len(cancelled)
            for entry in self._running:
                entry.reported = True
                entry.context.cancelled.set()
            self._work_ready.notify_all()
            self._monitor_wake.notify_all()
        return cancelled

    def alive_threads(self):
        """Job threads still inside a job (after :meth:`stop`, the ones that ignored cancellation)."""
        with self._lock:
            return len(self._running)

    def _work(self):
        while True:
            with self._lock:
                while not self._pending and not self._stopped:
                    self._work_ready.wait()
                if self._stopped:
                    return
                job = self._pending.popleft()
                entry = _Running(job, JobContext(job, self.settings))
                self._running.add(entry)
                self._owed += 1
                if entry.context.deadline is not None:
                    self._monitor_wake.notify_all()
            self.on_started(job)
            started = time.monotonic()
            result = execute_job(self.pm, job, entry.context)
            self._observe(time.monotonic() - started)
            with self._lock:
                self._running.discard(entry)
                reported, entry.reported = entry.reported, True
            if not reported:
                self._report(result)

    def _observe(self, seconds):
        average = self.average_seconds
        self.average_seconds = seconds if average is None else average + (seconds - average) * AVERAGE_WEIGHT

    def credit(self, maximum):
        """How many jobs this process should hold: enough for ``BUFFER_SECONDS`` of work, within bounds.

        Fast jobs earn a deep prefetch (no thread waits on a round trip to the broker);
        slow ones a shallow one (no process hoards jobs that another could start now).
        """
        if self.average_seconds is None:
            return min(maximum, self.threads * 2)
        wanted = math.ceil(self.threads * BUFFER_SECONDS / max(self.average_seconds, 1e-6))
        return max(1, min(maximum, max(self.threads, wanted)))

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
