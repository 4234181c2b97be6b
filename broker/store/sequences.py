"""Per-queue job numbers: each job's ``sequence`` is 1, 2, ... within its namespace and queue.

The last number given per queue is kept in ``tubeway_queue_counter``, written in the
transaction that stores the jobs (once per queue, when it commits: see :meth:`QueueSequences.flush`),
so a number is never given twice: not after the jobs holding it are deleted, not across a
broker restart, not to two jobs created at once. A number given in a savepoint that rolled
back is skipped, never reused.
"""
from tubeway.broker.store.models import QueueCounter

#: Queues whose last number is kept in memory (the ones used least lately are read again when needed).
CACHED_QUEUES = 4096


class QueueSequences:
    """The last sequence number of each queue seen, read from storage once, written with each insert."""

    def __init__(self, db):
        self.db = db
        self._last = {}
        self._unwritten = {}  # (namespace, queue) -> last number given and not yet written
        p = db.param
        conflict = "ON CONFLICT (namespace, queue) DO UPDATE SET last = excluded.last"
        self._upsert = f'INSERT INTO "{QueueCounter._meta.table_name}" (namespace, queue, last) ' \
                       f"VALUES ({p}, {p}, {p}) {conflict}"

    def _last_of(self, key):
        last = self._last.pop(key, None)  # re-inserted by number(): dict order is least recently used first
        if last is None:
            row = QueueCounter.get_or_none((QueueCounter.namespace == key[0]) & (QueueCounter.queue == key[1]))
            last = row.last if row is not None else 0
        return last

    def number(self, records, deferred=False):
        """Give each new record its ``sequence``, in order, and store the queues' new last numbers
        (``deferred``: at the next :meth:`flush`, which must come in the same transaction)."""
        touched = {}
        for record in records:
            key = (record["namespace"], record["queue"])
            last = touched.get(key)
            if last is None:
                last = self._last_of(key)
            record["sequence"] = touched[key] = last + 1
        self._last.update(touched)
        while len(self._last) > CACHED_QUEUES:
            del self._last[next(iter(self._last))]
        self._unwritten.update(touched)
        if not deferred:
            self.flush()

    def flush(self):
        """Write the last numbers given since the last flush, one row per queue."""
        unwritten, self._unwritten = self._unwritten, {}
        cursor = self.db.cursor()
        for (namespace, queue), last in unwritten.items():
            cursor.execute(self._upsert, (namespace, queue, last))

    def forget_unwritten(self):
        """The transaction rolled back: numbers not written are read from storage again when next needed."""
        for key in self._unwritten:
            self._last.pop(key, None)
        self._unwritten = {}
