"""Ready windows: a bounded in-memory cache of the next queued jobs of each queue.

Storage holds the truth; a :class:`Window` holds at most ``size`` keys
``(priority, seq, id)`` of one ``(namespace, queue, kind)``, lowest first. While a
window is *truncated* storage may hold queued jobs past its highest key; those
are read in (keyset, from the ready index) when the window runs low. A job that
becomes queued enters the window only if its key sorts before that highest key,
so the window always holds the true head of the queue and memory stays flat
however long the queue grows.
"""
import heapq



class Window:
    """The head of one queue of one kind, as ``(priority, seq, id)`` keys in a heap."""

    def __init__(self, key, size):
        self.key = key
        self.size = size
        self.heap = []
        self.truncated = True
        self.highest = None

    def __len__(self):
        return len(self.heap)

    def offer(self, item):
        """Take a newly queued job's key if it belongs in the window; returns the keys dropped.

        None means the key was not taken; a window grown past twice its size drops its
        highest keys (they stay queued in storage and are read again later).
        """
        if self.truncated and (self.highest is None or item > self.highest):
            return None
        heapq.heappush(self.heap, item)
        if len(self.heap) <= self.size * 2:
            return []
        self.heap.sort()
        dropped = self.heap[self.size:]
        del self.heap[self.size:]
        self.highest = self.heap[-1]
        self.truncated = True
        return dropped

    def refill(self, store):
        """Read the next keys from storage when the window is truncated and low; returns them."""
        if not self.truncated or len(self.heap) >= max(1, self.size // 4):
            return []
        namespace, queue, kind = self.key
        want = self.size - len(self.heap)
        rows = store.ready_after(namespace, queue, kind, self.highest, want)
        for row in rows:
            heapq.heappush(self.heap, tuple(row))
        if rows:
            self.highest = tuple(rows[-1])
        self.truncated = len(rows) == want
        return rows

    def head(self):
        """The lowest key, or None."""
        return self.heap[0] if self.heap else None

    def pop(self):
        """Remove and return the lowest key."""
        return heapq.heappop(self.heap)


class Dispatcher:
    """All ready windows, and which job ids they hold (for cancel and delete)."""

    def __init__(self, store, size):
        self.store = store
        self.size = size
        self.windows = {}
        self.members = {}

    def window(self, key):
        """The window of ``(namespace, queue, kind)``, created truncated (unknown) if new."""
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = Window(key, self.size)
        return window

    def load(self):
        """At start: one truncated window per queue that holds queued jobs."""
        for key in self.store.ready_queues():
            self.window(tuple(key))

    def queued(self, record):
        """A job became queued: keep its key if it belongs at the head of its queue."""
        key = (record["namespace"], record["queue"], record["kind"])
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = Window(key, self.size)
            window.truncated = False
        item = (record["priority"], record["seq"], record["id"])
        dropped = window.offer(item)
        if dropped is not None:
            self.members[record["id"]] = key
            if dropped:
                kept = {job_id for _, _, job_id in window.heap}  # a retried job may sit there twice
                for _, _, job_id in dropped:
                    if job_id not in kept:
                        self.members.pop(job_id, None)

    def forget(self, job_id):
        """A job left the queued state other than by dispatch (cancelled, deleted)."""
        self.members.pop(job_id, None)

    def take(self, kinds=None, namespace=None, queues=None, limit=1):
        """Pop up to ``limit`` keys, best first across the matching windows."""
        windows = [w for k, w in self.windows.items()
                   if (kinds is None or k[2] in kinds) and (namespace is None or k[0] == namespace)
                   and (queues is None or k[1] in queues)]
        taken = []
        while len(taken) < limit and windows:
            best = None
            for window in windows:
                head = self._live_head(window)
                if head is not None and (best is None or head < best.head()):
                    best = window
            if best is None:
                break
            item = best.pop()
            self.members.pop(item[2], None)
            taken.append(item)
        return taken

    def _refill(self, window):
        for _, _, job_id in window.refill(self.store):
            self.members[job_id] = window.key

    def _live_head(self, window):
        self._refill(window)
        while window.heap and window.heap[0][2] not in self.members:
            heapq.heappop(window.heap)
            if not window.heap:
                self._refill(window)
        return window.head()

    def has_ready(self, kinds=None, namespace=None):
        """True if some window of these kinds may hold a job (cheap, may be stale-positive)."""
        return any(w.heap or w.truncated for k, w in self.windows.items()
                   if (kinds is None or k[2] in kinds) and (namespace is None or k[0] == namespace))
