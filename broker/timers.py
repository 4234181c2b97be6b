"""Due times: delayed jobs, leases, job timeouts, result TTLs and schedules, each fired from an index.

A :class:`DueTimer` remembers only the earliest due time of its kind. Storage
answers "what is due now" and "what is next" from a partial index on the due
column, so firing never scans all jobs and memory does not grow with them.
Anyone who stores an earlier due time calls :meth:`DueTimer.note`.
"""
import time

#: Timer kinds, each a due-time column in storage (see ``Store.next_due``).
TIMERS = ("delayed", "lease", "deadline", "expiry")


class DueTimer:
    """The next due time of one timer kind, refreshed from storage after it fires."""

    def __init__(self, name, store):
        self.name = name
        self.store = store
        self.next_at = None

    def refresh(self):
        """Ask storage for the earliest due time."""
        self.next_at = self.store.next_due(self.name)

    def note(self, due_at):
        """Someone stored a due time: remember it if it is the earliest."""
        if due_at is not None and (self.next_at is None or due_at < self.next_at):
            self.next_at = due_at

    def is_due(self, now):
        """True when something may be due at ``now``."""
        return self.next_at is not None and self.next_at <= now

    def take_due(self, now, limit=1000):
        """Records due at ``now`` (up to ``limit``), then refresh the next due time."""
        records = self.store.due(self.name, now, limit)
        if len(records) < limit:
            self.refresh()
        return records


class Timers:
    """One :class:`DueTimer` per kind."""

    def __init__(self, store, clock=time.time):
        self.clock = clock
        self.by_name = {name: DueTimer(name, store) for name in TIMERS}

    def __getitem__(self, name):
        return self.by_name[name]

    def add(self, timer):
        """Add a timer of another kind (one with a store of its own, like the schedules')."""
        self.by_name[timer.name] = timer

    def refresh(self):
        """Read every next due time from storage (at start)."""
        for timer in self.by_name.values():
            timer.refresh()

    def next_at(self):
        """The earliest due time of any kind, or None."""
        times = [t.next_at for t in self.by_name.values() if t.next_at is not None]
        return min(times) if times else None

    def due(self, now):
        """The timers due at ``now``."""
        return [t for t in self.by_name.values() if t.is_due(now)]
