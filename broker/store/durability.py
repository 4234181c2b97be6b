"""When the broker's writes reach stable storage: before it acknowledges anything, not at every commit.

With the durable default (``sqlite_synchronous = FULL``) an acknowledged job must survive
a power loss, so before a reply leaves, everything committed so far must be on disk.
Most turns of the broker acknowledge nothing: a worker's results, a delayed job coming
due, a lease taken back. Their commits are written (so a ``kill -9`` of any process
loses nothing) but not flushed; the next turn that replies to a client flushes them
together with its own. A power loss can then undo a job's start or end that nobody was
told about, and the job runs again, as at-least-once delivery allows; never an
acknowledged submit, update or cancel.

* SQLite: the broker's connection commits with ``synchronous = NORMAL`` (in WAL mode:
  written, not synced; still safe from corruption), and :meth:`AckDurability.before_replies`
  calls ``fdatasync`` on the WAL file when rows changed since the last flush.
* PostgreSQL: a turn with no reply commits with ``synchronous_commit`` off; a turn with one
  commits as usual, and waiting for its own WAL flush covers every earlier commit.

Any other ``sqlite_synchronous`` than ``FULL`` is used as it is, with no flush of our own.
"""
import os

from tubeway.broker.store.models import is_postgres


class AckDurability:
    """Flushes the broker's commits to stable storage only before replies leave (see the module)."""

    def __init__(self, db, level):
        self.db = db
        self.postgres = is_postgres(db)
        path = None if self.postgres else db.database
        self.deferring = str(level).upper() == "FULL" and path != ":memory:"
        self.wal_path = None if self.postgres else f"{path}-wal"
        self._wal_fd = None
        self._flushed = None  # (connection, total_changes) at the last flush
        if self.deferring and not self.postgres:
            db.execute_sql("PRAGMA synchronous = NORMAL")

    def before_commit(self, replying):
        """Inside a turn's transaction, last: a PostgreSQL turn that replies to no one need not wait for its flush."""
        if self.deferring and self.postgres and not replying:
            self.db.execute_sql("SET LOCAL synchronous_commit TO OFF")

    def before_replies(self):
        """After a commit, before its replies are sent: SQLite's WAL is flushed if rows changed since the last time."""
        if not self.deferring or self.postgres:
            return
        connection = self.db.connection()
        state = (connection, connection.total_changes)
        if state == self._flushed:
            return
        fd = self._wal()
        if fd is not None:
            os.fdatasync(fd)
        self._flushed = state

    def _wal(self):
        if self._wal_fd is not None and os.fstat(self._wal_fd).st_nlink == 0:  # the WAL was removed and made anew
            self.close()
        if self._wal_fd is None:
            try:
                self._wal_fd = os.open(self.wal_path, os.O_RDONLY)
            except FileNotFoundError:  # no WAL: every commit is checkpointed into the synced database file
                return None
        return self._wal_fd

    def close(self):
        """Close the WAL's file descriptor."""
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None
