"""The system under torture: broker, front end and worker pool as separate processes, each killable alone.

A :class:`Rig` starts ``tubeway broker``, ``tubeway http`` and ``tubeway worker
--processes 2`` on one storage (through :class:`twkit.Cluster`, so pytest-xprocess
keeps their logs), kills one part with SIGKILL (the broker, one worker process of the
pool, the front end, or all of them), starts again what it killed and waits until the
system is whole again. :meth:`Rig.stop` ends every process it ever saw, including
worker processes orphaned by a killed pool.
"""
import os
import signal

import psutil

from twkit import poll_until

ROLES = ("broker", "http", "worker")
TARGETS = ("broker", "worker", "http", "all")
WORKER_PROCESSES = 2
#: Attempts of a Queue task API task: a worker killed during its call must not end it for good.
QUEUE_ATTEMPTS = 5
HEALTHY_TIMEOUT = 60.0


class Rig:
    """One torture run's processes (see the module docstring)."""

    def __init__(self, cluster, storage_flags):
        self.cluster = cluster
        self.extra = [*storage_flags, "--queue-max-attempts", QUEUE_ATTEMPTS, "--request-timeout", "2",
                      "--processes", WORKER_PROCESSES]
        self.names = {}
        self.started = []  # (role, xprocess name) of every process started, oldest first
        self.seen = {}  # pid -> create_time of every process started or observed (for the final sweep)

    @property
    def url(self):
        """The front end's base URL."""
        return self.cluster.url

    # -- starting -------------------------------------------------------------------------
    def start(self, role):
        """Start one role (waiting for the broker to answer, or the front end to listen)."""
        self.names[role] = self.cluster.start(role, *self.extra)
        self.started.append((role, self.names[role]))
        self._note(self.pid(role))

    def start_all(self):
        """Start every role, broker first, and wait until the system is whole."""
        for role in ROLES:
            self.start(role)
        self.wait_whole()

    def wait_whole(self, gone=()):
        """Poll until the pool runs its worker processes (none of ``gone``) and /healthz answers 200."""
        def pool_full():
            pids = self.worker_pids()
            return len(pids) == WORKER_PROCESSES and not set(pids) & set(gone)

        poll_until(pool_full, timeout=HEALTHY_TIMEOUT, what="the worker pool at full strength")
        poll_until(self.cluster.healthy, timeout=HEALTHY_TIMEOUT, what="GET /healthz 200")

    # -- processes ------------------------------------------------------------------------
    def pid(self, role):
        """The pid of a role's process (the pool supervisor for ``worker``)."""
        return self.cluster.pid(self.names[role])

    def worker_pids(self):
        """Pids of the pool's live worker processes."""
        try:
            children = psutil.Process(self.pid("worker")).children()
        except psutil.NoSuchProcess:
            return []
        pids = []
        for child in children:
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    self._note(child.pid)
                    pids.append(child.pid)
            except psutil.NoSuchProcess:
                continue
        return sorted(pids)

    # -- chaos ----------------------------------------------------------------------------
    def kill(self, target, rng):
        """SIGKILL ``target`` (one of :data:`TARGETS`); returns the pids killed once they are gone (and reaped)."""
        if target == "worker":
            victims = [rng.choice(self.worker_pids())]
        elif target == "all":
            victims = [self.pid(role) for role in ROLES] + self.worker_pids()
        else:
            victims = [self.pid(target)]
        processes = _processes(victims)
        if target == "all":
            for role in ROLES:
                _signal_group(self.pid(role))
        else:
            _signal(victims[0])
        _, alive = psutil.wait_procs(processes, timeout=20)  # reaps those that are our children
        assert not alive, f"still alive 20 s after kill -9: {alive}"
        return victims

    def restart(self, target, victims):
        """Start again what :meth:`kill` killed (the pool restarts its own workers) and wait until whole."""
        roles = ROLES if target == "all" else (target,) if target != "worker" else ()
        for role in roles:
            self.start(role)
        self.wait_whole(gone=victims if target == "worker" else ())

    # -- stopping -------------------------------------------------------------------------
    def stop(self):
        """Stop every process: the cluster's own, then any straggler this rig saw (orphaned workers)."""
        try:
            self.cluster.stop()
        finally:
            for pid, created in list(self.seen.items()):
                try:
                    process = psutil.Process(pid)
                    if process.create_time() == created:
                        process.kill()
                except psutil.NoSuchProcess:
                    pass

    def logs(self, role):
        """The logs of every process of ``role`` started so far, oldest first."""
        return [self.cluster.log(name) for started_role, name in self.started if started_role == role]

    def _note(self, pid):
        if pid not in self.seen:
            try:
                self.seen[pid] = psutil.Process(pid).create_time()
            except psutil.NoSuchProcess:
                pass


def _signal(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _signal_group(pid):
    """SIGKILL a process group (xprocess starts each role in its own group: the pool's includes its workers)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass



def _processes(pids):
    """psutil handles of the pids still there."""
    processes = []
    for pid in pids:
        try:
            processes.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    return processes
