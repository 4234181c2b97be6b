"""Slow read-only queries on a thread of their own, so the broker loop never waits for them.

Counting jobs per queue and state reads every row (about 0.15 s per million jobs on
SQLite); run on the loop, it would hold up every message meanwhile. A
:class:`BackgroundReads` thread runs such a query on its own database connection
(Peewee keeps one per thread; SQLite in WAL mode and PostgreSQL let it read what is
committed while the loop writes) and hands the answer back to the loop, which a pipe
next to the broker socket wakes. An in-memory SQLite database has no second
connection to the same data, so there the query runs at once, on the loop.
"""
import collections
import logging
import queue
import threading

import peewee as pw

from tubeway.core.wakeup import WakeupPipe

log = logging.getLogger("tubeway.broker")

CLOSE_TIMEOUT = 5.0


class BackgroundReads:
    """One reading thread; :meth:`submit` a query, :meth:`take` what finished (loop side)."""

    def __init__(self, db):
        self.db = db
        self.inline = isinstance(db, pw.SqliteDatabase) and db.database in ("", ":memory:")
        self._tasks = queue.SimpleQueue()
        self._finished = collections.deque()
        self._pipe = WakeupPipe()
        self.read_fd = self._pipe.read_fd
        self._thread = None
        if not self.inline:
            self._thread = threading.Thread(target=self._serve, name="broker-reads", daemon=True)
            self._thread.start()

    def submit(self, query, then):
        """Run ``query()`` on the reading thread; ``then(result, error)`` runs on the loop when it is done."""
        if self.inline:
            self._finished.append((then, *self._call(query)))
            self._pipe.poke()
        else:
            self._tasks.put((query, then))

    def take(self):
        """The answers ready, as ``(then, result, error)`` (loop side)."""
        self._pipe.drain()
        done = []
        while self._finished:
            done.append(self._finished.popleft())
        return done

    def run_finished(self):
        """Call the ``then`` of every answer ready (loop side); one that raises is logged, the others still run."""
        for then, result, error in self.take():
            try:
                then(result, error)
            except Exception:
                log.exception("handling a background read's answer failed")

    def close(self):
        """Stop the thread (it closes its connection), then the pipe once nothing can write to it."""
        if self._thread is not None:
            self._tasks.put(None)
            self._thread.join(CLOSE_TIMEOUT)
            if self._thread.is_alive():
                log.warning("a background read still runs at shutdown; left to end with the process")
                return
        self._pipe.close()

    def _serve(self):
        try:
            while True:
                task = self._tasks.get()
                if task is None:
                    return
                query, then = task
                self._finished.append((then, *self._call(query)))
                self._pipe.poke()
        finally:
            if not self.db.is_closed():
                self.db.close()  # this thread's own connection

    def _call(self, query):
        try:
            return query(), None
        except Exception as exc:  # reported to whoever asked; the thread goes on
            log.exception("a background read failed")
            if not self.inline and not self.db.is_closed():
                self.db.close()  # a broken connection is opened afresh by the next read
            return None, exc
