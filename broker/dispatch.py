"""Ready windows: a bounded in-memory cache of the next queued jobs of each queue.

Storage holds the truth; a :class:`Window` holds at most ``size`` keys
``(priority, rank, id)`` of one ``(namespace, queue, kind)``, lowest first (``rank`` is the
job's ``seq``, negated for a ``lifo`` job: those go first, newest first). While a
window is *truncated* storage may hold queued jobs past its highest key; those
are read in (keyset, from the ready index) when the window runs low. A job that
becomes queued enters the window only if its key sorts before that highest key,
so the window always holds the true head of the queue and memory stays flat
however long the queue grows.

A window that is not truncated holds every queued job of its key, so once it holds
none storage holds none either: the window is dropped, and made again (complete)
when a job of that key is queued. Memory and the cost of :meth:`Dispatcher.take`
therefore follow the queues that hold queued jobs now, not every queue ever seen.
Before :meth:`Dispatcher.load` has read which queues hold jobs, a new window is
made truncated, since storage may hold jobs of its key that nothing read yet.
"""
import heapq


class Window:
    """The head of one queue of one kind, as ``(priority, seq, id)`` keys in a heap."""

    __slots__ = ("key", "size", "low", "heap", "truncated", "highest", "live")

    def __init__(self, key, size, truncated=True):
        self.key = key
        self.size = size
        self.low = size // 4 or 1  # refill a truncated window holding fewer keys than this
        self.heap = []
        self.truncated = truncated
        self.highest = None
        self.live = 0  # keys of queued jobs in the heap (the others are cancelled or deleted)

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
        if not self.truncated or len(self.heap) >= self.low:
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
    """The ready windows of the queues holding queued jobs, and which job ids they hold.

    ``windows`` maps ``(namespace, queue, kind)`` to its window, ``by_kind`` maps a
    kind to its windows (what workers ask by), ``members`` maps the id of each
    queued job a window holds to that window (cancel and delete remove it there).
    Every window held is truncated or holds a queued job.
    """

    def __init__(self, store, size, gate=None):
        self.store = store
        self.size = size
        #: ``gate(key)``: how many more jobs of a window of a ``gated_kinds`` kind may start now (see
        #: Endpoints.room); the windows of other kinds have no limit and cost the gate nothing
        self.gate = gate
        self.gated_kinds = set()
        self.windows = {}
        self.by_kind = {}
        self.members = {}
        self.loaded = False

    def window(self, key):
        """The window of ``(namespace, queue, kind)``, made truncated (unknown) if new."""
        window = self.windows.get(key)
        if window is None:
            window = self._open(key, truncated=True)
        return window

    def load(self):
        """At start: one truncated window per queue that holds queued jobs."""
        for key in self.store.ready_queues():
            self.window(tuple(key))
        self.loaded = True

    def queued(self, record):
        """A job became queued: keep its key if it belongs at the head of its queue."""
        key = (record["namespace"], record["queue"], record["kind"])
        window = self.windows.get(key)
        if window is None:
            window = self._open(key, truncated=not self.loaded)
        dropped = window.offer((record["priority"], record["rank"], record["id"]))
        if dropped is None:
            return
        self._admit(record["id"], window)
        if dropped:
            kept = {job_id for _, _, job_id in window.heap}  # a retried job may sit there twice
            for _, _, job_id in dropped:
                if job_id not in kept:
                    self._release(job_id)

    def forget(self, job_id):
        """A job left the queued state other than by dispatch (cancelled, deleted)."""
        self._release(job_id)

    def take(self, kinds=None, namespace=None, queues=None, limit=1):
        """Pop up to ``limit`` keys, best first across the matching windows."""
        windows = self._matching(kinds, namespace, queues)
        rooms = self._rooms(kinds)
        if rooms:
            windows = [window for window in windows if rooms.get(window.key) != 0]
            rooms = {key: room for key, room in rooms.items() if room}
        if not windows:
            return []
        if rooms:
            return self._take_gated(windows, rooms, limit)
        if len(windows) == 1:
            return self._take_from(windows[0], limit)
        if limit == 1:
            return self._take_best(windows)
        return self._take_merged(windows, limit)

    def has_ready(self, kinds=None, namespace=None):
        """True if some window of these kinds may hold a job (cheap, may be stale-positive)."""
        return any(namespace is None or key[0] == namespace
                   for pool in self._pools(kinds) for key in pool)

    # -- taking -----------------------------------------------------------------------------
    def _take_from(self, window, limit):
        taken = []
        while len(taken) < limit and self._live_head(window) is not None:
            item = window.pop()
            taken.append(item)
            self._release(item[2])
        return taken

    def _best(self, windows):
        """``(window, its live head)`` of the window whose head is lowest, or ``(None, None)``."""
        best, best_head = None, None
        for window in windows:
            head = self._live_head(window)
            if head is not None and (best_head is None or head < best_head):
                best, best_head = window, head
        return best, best_head

    def _take_best(self, windows):
        best, best_head = self._best(windows)
        if best is None:
            return []
        best.pop()
        self._release(best_head[2])
        return [best_head]

    def _rooms(self, kinds):
        """``{key: room}`` of the gated windows of ``kinds`` (all kinds when None) held now."""
        if self.gate is None:
            return {}
        return {key: self.gate(key) for kind in self.gated_kinds & self.by_kind.keys()
                if kinds is None or kind in kinds for key in self.by_kind[kind]}

    def _take_gated(self, windows, rooms, limit):
        """Best first, one at a time, none from a window past its room (``rooms``: the windows with a limit)."""
        taken = []
        while len(taken) < limit:
            window, head = self._best([w for w in windows if rooms.get(w.key, 1) > 0])
            if window is None:
                break
            window.pop()
            self._release(head[2])
            taken.append(head)
            if window.key in rooms:
                rooms[window.key] -= 1
        return taken

    def _take_merged(self, windows, limit):
        """The best ``limit`` keys of several windows, merging their heads in a heap."""
        heads = []
        for index, window in enumerate(windows):
            head = self._live_head(window)
            if head is not None:
                heads.append((head, index))
        heapq.heapify(heads)
        taken = []
        while heads:
            index = heads[0][1]
            window = windows[index]
            item = window.pop()
            taken.append(item)
            self._release(item[2])
            if len(taken) == limit:
                break
            head = self._live_head(window)
            if head is None:
                heapq.heappop(heads)
            else:
                heapq.heapreplace(heads, (head, index))
        return taken

    # -- windows and members ----------------------------------------------------------------
    def _open(self, key, truncated):
        window = self.windows[key] = Window(key, self.size, truncated)
        pool = self.by_kind.get(key[2])
        if pool is None:
            pool = self.by_kind[key[2]] = {}
        pool[key] = window
        return window

    def _close(self, window):
        """Drop a window that holds no queued job while storage holds none of its key either."""
        key = window.key
        if self.windows.get(key) is not window:
            return
        del self.windows[key]
        pool = self.by_kind[key[2]]
        del pool[key]
        if not pool:
            del self.by_kind[key[2]]

    def _admit(self, job_id, window):
        if job_id not in self.members:
            self.members[job_id] = window
            window.live += 1

    def _release(self, job_id):
        window = self.members.pop(job_id, None)
        if window is not None:
            window.live -= 1
            if not window.live and not window.truncated:
                self._close(window)

    def _pools(self, kinds):
        """The ``{key: window}`` maps of these kinds (all windows in one map when every kind is asked)."""
        if kinds is None:
            return (self.windows,)
        by_kind = self.by_kind
        if len(kinds) < len(by_kind):
            return [by_kind[kind] for kind in kinds if kind in by_kind]
        pools = [pool for kind, pool in by_kind.items() if kind in kinds]
        return (self.windows,) if len(pools) == len(by_kind) else pools

    def _matching(self, kinds, namespace, queues):
        pools = self._pools(kinds)
        if namespace is None and queues is None:
            return list(pools[0].values()) if len(pools) == 1 else [w for pool in pools for w in pool.values()]
        return [window for pool in pools for key, window in pool.items()
                if (namespace is None or key[0] == namespace) and (queues is None or key[1] in queues)]

    def _live_head(self, window):
        """The lowest key of a queued job in the window (read from storage when low), or None."""
        heap, members = window.heap, self.members
        while True:
            if window.truncated and len(heap) < window.low:
                for _, _, job_id in window.refill(self.store):
                    self._admit(job_id, window)
            while heap and heap[0][2] not in members:
                heapq.heappop(heap)
            if heap:
                return heap[0]
            if not window.truncated:
                if not window.live:
                    self._close(window)
                return None
