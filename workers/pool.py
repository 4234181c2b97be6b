"""The worker pool: a supervisor that keeps ``processes`` worker processes running.

:func:`serve` starts the workers with ``multiprocess`` (fork where it is safe, that
is while the supervisor has no other thread; spawn otherwise). A child gets only
``settings.as_dict()`` and builds its own plugin manager, ZeroMQ context and socket
after it starts. A worker that dies is logged and started again (after a backoff when
it died young, so a broken plugin does not spin). SIGTERM or SIGINT stop the pool:
children get SIGTERM, then SIGKILL after :data:`STOP_GRACE` seconds.

Run it alone with ``python -m tubeway.workers.pool`` (settings from the environment).
"""
import logging
import os
import signal
import sys
import threading
import time

import multiprocess
from multiprocess.connection import wait

from tubeway.core.logs import setup_logging
from tubeway.core.settings import load_settings
from tubeway.plugins.manager import PluginManager
from tubeway.workers import worker

log = logging.getLogger("tubeway.pool")

#: Seconds stopping workers get (to finish their jobs) before they are killed.
STOP_GRACE = worker.DRAIN_SECONDS + 5.0
#: A worker that lived less than this many seconds died young: its restart waits.
MIN_UPTIME = 2.0
MAX_RESTART_DELAY = 30.0
POLL_SECONDS = 0.5


def _run_worker(settings_values, parent_pid):
    sys.exit(worker.main(settings_values, parent_pid))


class Slot:
    """One place in the pool: its current process, when it started, how often it died young."""

    def __init__(self, number):
        self.number = number
        self.process = None
        self.started = 0.0
        self.young_deaths = 0
        self.restart_at = 0.0


class Pool:
    """The supervisor: starts, reaps, restarts and stops worker processes."""

    def __init__(self, settings, count):
        self.settings = settings
        self.values = settings.as_dict()
        self.slots = [Slot(n) for n in range(count)]
        method = "fork" if "fork" in multiprocess.get_all_start_methods() and threading.active_count() == 1 \
            else "spawn"
        self.mp = multiprocess.get_context(method)
        self.stopping = False

    def stop(self, signum=None, frame=None):
        """Ask the supervisor loop to stop (a signal handler)."""
        self.stopping = True

    def run(self):
        """Supervise until stopped; returns the exit code."""
        for slot in self.slots:
            self._start(slot)
        while not self.stopping:
            sentinels = [s.process.sentinel for s in self.slots if s.process is not None]
            if sentinels:
                wait(sentinels, timeout=POLL_SECONDS)
            else:
                time.sleep(POLL_SECONDS)
            self._reap(time.monotonic())
        self._stop_all()
        return 0

    def _start(self, slot):
        slot.process = self.mp.Process(target=_run_worker, args=(self.values, os.getpid()),
                                       name=f"tubeway-worker-{slot.number}", daemon=False)
        slot.process.start()
        slot.started = time.monotonic()

    def _reap(self, now):
        for slot in self.slots:
            process = slot.process
            if process is not None and process.exitcode is not None:
                process.join()
                lived = now - slot.started
                slot.young_deaths = slot.young_deaths + 1 if lived < MIN_UPTIME else 0
                delay = min(2 ** (slot.young_deaths - 1), MAX_RESTART_DELAY) if slot.young_deaths else 0.0
                log.warning("worker %d (pid %s) exited with code %s after %.1f s; restarting%s", slot.number,
                            process.pid, process.exitcode, lived, f" in {delay:g} s" if delay else "")
                slot.process, slot.restart_at = None, now + delay
            if slot.process is None and now >= slot.restart_at and not self.stopping:
                self._start(slot)

    def _stop_all(self):
        alive = [s.process for s in self.slots if s.process is not None and s.process.is_alive()]
        log.info("worker pool stopping %d workers", len(alive))
        for process in alive:
            process.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for process in alive:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in alive:
            if process.is_alive():
                log.warning("worker pid %s did not stop within %g s; killing it", process.pid, STOP_GRACE)
                process.kill()
                process.join()


def serve(settings):
    """Run the worker pool in this process until SIGTERM or SIGINT; returns the exit code."""
    setup_logging("pool", settings.log_level)
    count = int(getattr(settings, "processes", 2))
    pm = PluginManager.load(settings)
    kinds, own = pm.worker_kinds(), pm.kind_concurrency()
    log.info("worker pool: broker %s, %d processes x %d shared threads%s, kinds: %s", settings.broker, count,
             int(getattr(settings, "worker_threads", 4)),
             "".join(f" + {n} for {kind}" for kind, n in sorted(own.items())), ", ".join(kinds) or "none")
    if count == 0:
        return 0
    pool = Pool(settings, count)
    previous = {signum: signal.signal(signum, pool.stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        return pool.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(serve(load_settings()))
