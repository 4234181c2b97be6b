"""Results on their way from job threads to a worker's socket loop.

Job threads may not touch the ZeroMQ socket, so they append results to an
:class:`Outbox`. The first result after the loop last looked writes one byte to a
pipe that the loop polls next to its socket; the loop then takes every result
waiting and sends them in one RESULTS message, so results batch up under load.
Ids of jobs that just started ride along, so the broker knows which leases were
really begun when a worker dies.
"""
import collections
import threading

from tubeway.core.wakeup import WakeupPipe


class Outbox:
    """Results from job threads waiting for the socket loop, which a pipe wakes when the first arrives."""

    def __init__(self):
        self._items = collections.deque()
        self._started = collections.deque()
        self._lock = threading.Lock()
        self._signalled = False
        self._pipe = WakeupPipe()
        self.read_fd = self._pipe.read_fd

    def put(self, result):
        """Add a result (any thread)."""
        self._items.append(result)
        self._wake()

    def started(self, job_id):
        """Note that a job started (any thread)."""
        self._started.append(job_id)
        self._wake()

    def _wake(self):
        with self._lock:
            if self._signalled:
                return
            self._signalled = True
        self.poke()

    def poke(self):
        """Wake the socket loop; safe in a signal handler."""
        self._pipe.poke()

    def take(self):
        """Every result waiting (socket loop only)."""
        self._pipe.drain()
        with self._lock:
            self._signalled = False
        items = []
        while self._items:
            items.append(self._items.popleft())
        return items

    def take_started(self):
        """Ids of jobs started since the last call (socket loop only)."""
        ids = []
        while self._started:
            ids.append(self._started.popleft())
        return ids

    def close(self):
        """Close the pipe."""
        self._pipe.close()
