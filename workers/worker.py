"""One worker process: a DEALER to the broker, heartbeats, jobs on threads, results in batches.

The socket loop follows the Paranoid Pirate worker: READY on connect, HEARTBEAT
every ``heartbeat_seconds`` (jobs run on other threads, so heartbeats go on while
they run), and a broker silent for ``worker_liveness_seconds`` means a fresh socket
after a backoff (1 s doubling to 32 s) and READY again. Results of jobs held across
a reconnect are still sent; the broker ignores those whose lease it took back.

Job threads hand results to an :class:`Outbox`, which wakes the socket loop through
a pipe; the loop sends every result waiting in one RESULTS message. Each heartbeat
names the jobs the worker holds (received, not yet answered) and how many JOBS
messages it has read, so the broker can take back a lease whose result was lost. On SIGTERM or
SIGINT the worker takes no more jobs, lets running ones finish for up to
:data:`DRAIN_SECONDS`, sends their results and DISCONNECT, and exits.

Run one alone with ``python -m tubeway.workers.worker`` (settings from the environment).
"""
import logging
import os
import platform
import signal
import sys
import time

import zmq

from tubeway.core import protocol as p
from tubeway.core.logs import setup_logging
from tubeway.core.settings import Settings, load_settings
from tubeway.plugins.manager import PluginManager
from tubeway.workers.outbox import Outbox
from tubeway.workers.runner import JobRunner

log = logging.getLogger("tubeway.worker")

#: Seconds a stopping worker lets running jobs finish before it abandons them.
DRAIN_SECONDS = 5.0
BACKOFF_START = 1.0
BACKOFF_MAX = 32.0
#: Most results in one RESULTS message.
MAX_BATCH = 1000
#: Most broker messages read before the loop looks at results and timers again.
MAX_READS = 1000
CLOSE_LINGER_MS = 2000



def returned(jobs):
    """Results handing jobs back to the broker unstarted."""
    return [{"id": job["id"], "attempt": job["attempts"], "lease": job.get("started_at"), "state": p.RETURNED}
            for job in jobs]


class Worker:
    """The socket loop of one worker process."""

    def __init__(self, settings, pm, parent_pid=None):
        self.settings = settings
        self.pm = pm
        self.parent_pid = parent_pid
        self.endpoints = _endpoints(settings.broker)
        self.heartbeat = float(getattr(settings, "heartbeat_seconds", 1.0))
        self.liveness = float(getattr(settings, "worker_liveness_seconds", 5.0))
        self.prefetch = int(getattr(settings, "worker_prefetch", 256))
        self.outbox = Outbox()
        threads = int(getattr(settings, "worker_threads", 4))
        self.runner = JobRunner(pm, settings, threads, self.outbox.put, self._stuck,
                                on_started=lambda job: self.outbox.started(job["id"]))
        self.ready_body = {"kinds": pm.worker_kinds(), "queues": None, "credit": self.runner.credit(self.prefetch),
                           "pid": os.getpid(), "host": platform.node()}
        self.context = zmq.Context()
        self.socket = None
        self.poller = None
        self.exit_code = 0
        self.stuck = False
        self._stop_requested = False
        self._drain_until = None
        self._unsent = []
        self._held = set()  # ids of jobs received and not yet answered (sent in every heartbeat)
        self._jobs_seen = 0  # JOBS messages received since the last READY
        self._endpoint_index = 0
        self._backoff = BACKOFF_START
        self._reconnect_at = 0.0
        self._last_heard = self._next_heartbeat = 0.0

    @property
    def endpoint(self):
        """The broker endpoint in use."""
        return self.endpoints[self._endpoint_index % len(self.endpoints)]

    def request_stop(self, signum=None, frame=None):
        """Begin a graceful stop (a signal handler: sets a flag and wakes the loop)."""
        self._stop_requested = True
        self.outbox.poke()

    def run(self):
        """Serve the broker until stopped; returns the exit code."""
        self.runner.start()
        self._connect()
        log.debug("worker connected to %s (kinds: %s; kinds on threads of their own: %s)", self.endpoint,
                  ", ".join(self.ready_body["kinds"]), self.runner.kind_threads() or "none")
        try:
            while not self._finished(time.monotonic()):
                self._step()
        finally:
            self._finish()
        return self.exit_code

    def _step(self):
        now = time.monotonic()
        timeout = self._next_heartbeat - now if self.socket is not None else self._reconnect_at - now
        if self._drain_until is not None:
            timeout = min(timeout, 0.05)
        events = dict(self.poller.poll(max(0.0, min(timeout, self.heartbeat)) * 1000))
        if self.socket is not None and events.get(self.socket):
            self._read()
        self._send_results(self.outbox.take(), self.outbox.take_started())
        self._tick(time.monotonic())

    def _tick(self, now):
        if self._stop_requested and self._drain_until is None:
            self._begin_stop(now)
        if self.parent_pid is not None and os.getppid() != self.parent_pid and not self._stop_requested:
            log.warning("the worker pool (pid %s) is gone; stopping", self.parent_pid)
            self.request_stop()
        if self.socket is None:
            if now >= self._reconnect_at:
                self._connect()
        elif now - self._last_heard > self.liveness:
            self._lose_broker(now)
        elif now >= self._next_heartbeat:
            self._send(p.HEARTBEAT, {"held": list(self._held), "seen": self._jobs_seen})
            self._next_heartbeat = now + self.heartbeat

    def _connect(self):
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(self.endpoint)
        self.poller = zmq.Poller()
        self.poller.register(self.socket, zmq.POLLIN)
        self.poller.register(self.outbox.read_fd, zmq.POLLIN)
        now = time.monotonic()
        self._last_heard, self._next_heartbeat = now, now + self.heartbeat
        if self._drain_until is None:
            self._register()
        unsent, self._unsent = self._unsent, []
        self._send_results(unsent)

    def _lose_broker(self, now):
        log.warning("broker %s silent for %.1f s; reconnecting in %g s", self.endpoint, now - self._last_heard,
                    self._backoff)
        self.socket.close(0)
        self.socket = None
        self.poller = zmq.Poller()
        self.poller.register(self.outbox.read_fd, zmq.POLLIN)
        self._reconnect_at = now + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)
        self._endpoint_index += 1

    def _read(self):
        for _ in range(MAX_READS):
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._last_heard = time.monotonic()
            self._backoff = BACKOFF_START
            if len(frames) != 3 or frames[0] != p.WORKER:
                log.warning("ignoring a malformed message from the broker (%d frames)", len(frames))
                continue
            try:
                body = p.unpack(frames[2])
                if not isinstance(body, dict):
                    raise ValueError("the body is not a map")
                self._handle(frames[1], body)
            except Exception as exc:  # bad bytes from a broker must not stop the worker
                log.warning("ignoring a malformed %r from the broker: %s", frames[1][:32], exc)

    def _handle(self, command, body):
        if command == p.JOBS:
            self._jobs_seen += 1
            jobs = [job for job in body.get("jobs") or () if _is_job(job)]
            if self._drain_until is None:
                for job in jobs:
                    self._held.add(job["id"])
                    self.runner.submit(job)
        elif command == p.ABORT:
            ids = [i for i in body.get("ids") or () if isinstance(i, str)]
            self._send_results(returned(self.runner.abort(ids)))
        elif command == p.DISCONNECT:
            log.info("broker %s asked this worker to register again", self.endpoint)
            if self._drain_until is None:
                self._register()
        elif command != p.HEARTBEAT:
            log.warning("ignoring unknown command %r from the broker", command)

    def _register(self):
        """READY: the broker numbers the JOBS messages of a registration from one, so we count afresh."""
        self._jobs_seen = 0
        self._send(p.READY, self.ready_body)

    def _send(self, command, body):
        try:
            self.socket.send_multipart([p.WORKER, command, p.pack(body)], zmq.NOBLOCK)
        except zmq.Again:
            log.warning("could not send %s to the broker %s (queue full); dropped", command.decode(), self.endpoint)

    def _send_results(self, results, started=()):
        if started:
            finished = {result["id"] for result in results}
            started = [job_id for job_id in started if job_id not in finished]
        if not results and not started:
            return
        if self.socket is None:
            self._unsent.extend(results)
            return
        credit = self.runner.credit(self.prefetch)
        for start in range(0, max(len(results), 1), MAX_BATCH):
            body = {"results": results[start:start + MAX_BATCH], "credit": credit}
            if start == 0 and started:
                body["started"] = started
            self._send(p.RESULTS, body)
        # Sent (or lost on the way): either way no longer ours; a lost one shows in the next heartbeat.
        self._held.difference_update(result["id"] for result in results)

    def _stuck(self, job, seconds):
        log.error("a job thread cannot be freed; this worker process exits so its pool starts a fresh one")
        self.stuck = True
        self.exit_code = 1
        self.request_stop()

    def _begin_stop(self, now):
        dropped = self.runner.drop_pending()
        self._send_results(returned(dropped))
        self._drain_until = now + DRAIN_SECONDS
        log.info("worker stopping: %d jobs running, %d not started returned to the broker",
                 self.runner.busy, len(dropped))

    def _finished(self, now):
        if self._drain_until is None:
            return False
        return self.runner.busy == 0 or now >= self._drain_until

    def _finish(self):
        abandoned = self.runner.stop()
        if abandoned:
            log.warning("worker stopped with %d jobs still running; the broker runs them again", len(abandoned))
        self._send_results(self.outbox.take())
        if self.socket is not None:
            self._send(p.DISCONNECT, {})
            self.socket.close(CLOSE_LINGER_MS)
        self.context.term()
        self.outbox.close()


def _is_job(job):
    return isinstance(job, dict) and isinstance(job.get("id"), str) and isinstance(job.get("attempts"), int)


def _endpoints(value):
    if isinstance(value, str):
        value = value.split(",")
    return [endpoint.strip() for endpoint in value if endpoint.strip()]


def main(settings_values, parent_pid=None):
    """Run one worker process until it is told to stop; returns its exit code.

    ``settings_values`` is ``Settings.as_dict()`` (a :class:`Settings` is accepted too);
    ``parent_pid``, when given, is the pool's pid: the worker stops if the pool goes away.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    settings = settings_values if isinstance(settings_values, Settings) else Settings.from_dict(settings_values)
    setup_logging("worker", settings.log_level)
    pm = PluginManager.load(settings)
    worker = Worker(settings, pm, parent_pid)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, worker.request_stop)
    pm.startup("worker", settings)
    try:
        code = worker.run()
    finally:
        pm.shutdown("worker", settings)
    if worker.runner.alive_threads():
        # A thread that ignores cancellation would keep the interpreter from exiting cleanly.
        logging.shutdown()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main(load_settings().as_dict()))
