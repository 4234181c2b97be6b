"""Helpers for broker tests over real sockets: a broker thread and a scripted worker."""
import socket
import threading
import time

import zmq

from polling import poll_until  # noqa: F401 - tests import it from here
from tubeway.broker.reactor import Broker
from tubeway.broker.store.models import open_database
from tubeway.core import protocol as p
from tubeway.core.errors import JobNotFound
from tubeway.core.job import normalize_spec
from tubeway.core.settings import load_settings


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]



def job(**fields):
    """A normalized spec, kind ``echo`` unless given."""
    fields.setdefault("kind", "echo")
    return normalize_spec(fields)


def gone(client, job_id):
    """True once the broker no longer has the job (deleted, pruned or expired)."""
    try:
        client.get(job_id)
    except JobNotFound:
        return True
    return False


def state_of(client, job_id):
    """A job's state, read through the broker."""
    return client.get(job_id)["state"]


class BrokerThread:
    """A real broker on a free TCP port, run in a thread of the test process."""

    def __init__(self, db_url, **overrides):
        values = {"broker": f"tcp://127.0.0.1:{free_port()}", "db": db_url, "heartbeat_seconds": 0.2,
                  "worker_liveness_seconds": 1.0, "lease_seconds": 300}
        values.update(overrides)
        self.settings = load_settings(values, env={})
        self.endpoint = self.settings.broker
        self.db = None
        self.broker = None
        self.thread = None

    def start(self):
        self.db = open_database(self.settings.database_url)
        self.broker = Broker(self.settings, self.db)
        self.recovered = self.broker.recover()
        self.broker.bind(self.endpoint)
        self.thread = threading.Thread(target=self.broker.run, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.broker.stop()
        self.thread.join(5)
        self.broker.close(linger=0)
        self.db.close()


class ScriptedWorker:
    """A worker speaking the protocol by hand, so tests choose exactly what it answers."""

    def __init__(self, endpoint, kinds=("echo",), credit=10):
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.aborted_ids = []
        self.pending_jobs = []
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.send(p.READY, {"kinds": list(kinds), "credit": credit, "pid": 0, "host": "test"})

    def send(self, command, body):
        self.socket.send_multipart([p.WORKER, command, p.pack(body)])

    def jobs(self, count=1, timeout=5.0):
        """Receive until ``count`` jobs arrived (answering heartbeats)."""
        got, self.pending_jobs = self.pending_jobs, []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.socket.poll(remaining * 1000):
                raise AssertionError(f"got {len(got)} jobs of {count}")
            self._receive(got)
        return got

    def drain(self):
        """Every job that has arrived by now (answering heartbeats), without waiting."""
        got, self.pending_jobs = self.pending_jobs, []
        while self.socket.poll(0):
            self._receive(got)
        return got

    def aborted(self, count, timeout=5.0):
        """Receive until ABORT messages named ``count`` jobs; returns their ids (jobs arriving meanwhile are kept)."""
        deadline = time.monotonic() + timeout
        while len(self.aborted_ids) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.socket.poll(remaining * 1000):
                raise AssertionError(f"{len(self.aborted_ids)} jobs aborted of {count}")
            self._receive(self.pending_jobs)
        return sorted(self.aborted_ids)

    def _receive(self, jobs):
        frames = self.socket.recv_multipart()
        if frames[1] == p.JOBS:
            jobs.extend(p.unpack(frames[2])["jobs"])
        elif frames[1] == p.ABORT:
            self.aborted_ids.extend(p.unpack(frames[2])["ids"])
        elif frames[1] == p.HEARTBEAT:
            self.send(p.HEARTBEAT, {})

    def finish(self, job, state="done", result=None, error=None, retry=None):
        self.send(p.RESULTS, {"results": [{"id": job["id"], "attempt": job["attempts"], "state": state,
                                           "result": result, "error": error, "retry": retry}]})

    def close(self):
        self.socket.close(0)
