"""Every query the broker runs: the storage contract, one documented method each.

Only this module and :mod:`models` touch SQL. Methods take and return native job
records (dicts with decoded JSON) or the short ``(priority, seq, id)`` keys the
dispatcher keeps in memory. The reactor wraps each batch of calls in
:meth:`Store.atomic`, so a batch commits (one fsync) before any reply leaves.
"""
import contextlib
import functools
import itertools

import peewee as pw

from tubeway.core.ids import new_job_ids
from tubeway.core.job import UNENDED
from tubeway.broker.job_filters import JobFilter
from tubeway.broker.store import listing
from tubeway.broker.store.models import Job, JobLabel, is_postgres
from tubeway.broker.store.records import (COLUMNS, JSON_COLUMNS, LABELS_COLUMN, PAYLOAD_COLUMN, TABLE, dumps,
                                          new_record, row_of, to_record)
from tubeway.broker.store.sequences import QueueSequences

# The cache of records inserted lately (see Store._remember) holds at most RECENT_LIMIT
# records and RECENT_BYTES of their estimated size: RECORD_BYTES for a record's own
# dict and fields, plus the length of its payload's and labels' JSON. Decoded, a
# payload takes 1 to 10 times its JSON length (the most for many small numbers or
# nested objects), so typical records stay near RECENT_BYTES and none go far past it.
RECENT_LIMIT = 50000
RECENT_BYTES = 64 * 1024 * 1024
RECORD_BYTES = 1536
#: Most jobs one ended job's retention deletes at once (more go at the next end).
PRUNE_BATCH = 1000


def _after_flush(method):
    """Decorate a Store method so pending updates are written before it runs."""
    @functools.wraps(method)
    def flushed(self, *args, **kwargs):
        if self._pending:
            self.flush()
        return method(self, *args, **kwargs)
    return flushed


def read_page(query_filter, now=None):
    """``(records, total)`` of a :class:`JobFilter`; safe on any thread (each has its own connection).

    The broker answers LIST with it off its loop (see :mod:`tubeway.broker.background`): a
    total or an order over many jobs may take a while, and the loop must not wait for it.
    """
    records = [to_record(row) for row in listing.select_page(query_filter, now)]
    return records, listing.count(query_filter, now) if query_filter.total else None


def count_jobs():
    """Job counts per namespace, queue and state: ``[(namespace, queue, state, n)]``.

    Reads every row, so the broker runs it off its loop (see
    :mod:`tubeway.broker.background`); safe on any thread, each has its own connection.
    """
    query = (Job.select(Job.namespace, Job.queue, Job.state, pw.fn.COUNT(Job.seq))
             .group_by(Job.namespace, Job.queue, Job.state).tuples())
    return list(query)


#: Each timer's due column, the condition of the rows that can fire, and the partial index of exactly
#: those rows (see ``models._add_indexes``).
TIMER_INDEXES = {
    "delayed": ("run_at", "\"state\" = 'delayed'", "job_delayed"),
    "lease": ("lease_until", "\"state\" = 'running' AND \"lease_until\" IS NOT NULL", "job_lease"),
    "deadline": ("deadline", "\"state\" = 'running' AND \"deadline\" IS NOT NULL", "job_deadline"),
    "expiry": ("expires_at", "\"expires_at\" IS NOT NULL", "job_expiry"),
}


class Store:
    """The broker's storage: jobs and labels, in SQLite or PostgreSQL through Peewee.

    The hot paths (insert, update by ``seq``, read by ``seq``) run SQL compiled once per
    shape, since building a Peewee query per job costs more than running it. The broker
    is the only writer, so it numbers new jobs (``seq``) itself.
    """

    def __init__(self, db):
        self.db = db
        self.postgres = is_postgres(db)
        self.param = db.param
        self._update_sql = {}
        self._pending = []  # (sql, values) of updates not yet sent, see flush()
        self._depth = 0  # transactions and savepoints open through atomic()
        self._recent = {}  # seq -> (record, estimated size) of jobs inserted lately and not changed since
        self._recent_bytes = 0
        self._last_seq = Job.select(pw.fn.MAX(Job.seq)).scalar() or 0
        self.sequences = QueueSequences(db)
        self._analyzed_seq, self._analyzed_at = -1, float("-inf")  # see optimize()
        self._insert_sql = self._compile_insert()
        self._select_head = f"SELECT {', '.join(self._quote(c) for c in COLUMNS)} FROM {self._quote(TABLE)}"
        self._timer_sql = self._compile_timers()

    @staticmethod
    def _quote(name):
        return f'"{name}"'  # both SQLite and PostgreSQL quote identifiers with double quotes

    def _compile_insert(self):
        columns = ", ".join(self._quote(c) for c in COLUMNS)
        values = ", ".join([self.param] * len(COLUMNS))
        return f"INSERT INTO {self._quote(TABLE)} ({columns}) VALUES ({values})"

    def _execute_many(self, sql, rows):
        cursor = self.db.cursor()
        if self.postgres:
            from psycopg2.extras import execute_batch

            execute_batch(cursor, sql, rows, page_size=500)
        else:
            cursor.executemany(sql, rows)

    @contextlib.contextmanager
    def atomic(self):
        """A transaction, or a savepoint inside one; pending updates are written inside it.

        Savepoints are plain SQL (the broker opens one per client message, and Peewee's
        cost more than the insert of a job). Queue numbers given inside are written
        once per transaction, just before it commits.
        """
        self.flush()
        if self._depth:
            with self._savepoint():
                yield
            return
        self._depth += 1
        try:
            with self.db.atomic():
                try:
                    yield
                    self.flush()
                    self.sequences.flush()
                except BaseException:
                    self._pending.clear()
                    self.sequences.forget_unwritten()
                    raise
        finally:
            self._depth -= 1

    @contextlib.contextmanager
    def _savepoint(self):
        name = f'"tw{self._depth}"'
        cursor = self.db.cursor()
        cursor.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield
            self.flush()
        except BaseException:
            self._pending.clear()
            cursor.execute(f"ROLLBACK TO SAVEPOINT {name}")
            cursor.execute(f"RELEASE SAVEPOINT {name}")
            raise
        finally:
            self._depth -= 1
        cursor.execute(f"RELEASE SAVEPOINT {name}")

    def flush(self):
        """Write the pending single-row updates, in order, runs of one shape per executemany."""
        pending, self._pending = self._pending, []
        for sql, run in itertools.groupby(pending, key=lambda item: item[0]):
            self._execute_many(sql, [values for _, values in run])

    # -- submission -------------------------------------------------------------------
    @_after_flush
    def existing_unique(self, namespace, keys):
        """Ids of live jobs holding these unique keys in ``namespace``: ``{key: id}``."""
        query = (Job.select(Job.unique_key, Job.id)
                 .where((Job.namespace == namespace) & Job.unique_key.in_(list(keys))))
        return {row.unique_key: row.id for row in query}

    @_after_flush
    def insert(self, specs, now):
        """Store new jobs from normalized specs; returns their records (with ``seq``)."""
        ids = new_job_ids(len(specs))
        records = [new_record(spec, now, job_id) for spec, job_id in zip(specs, ids)]
        seq = self._last_seq
        for record in records:
            seq += 1
            record["seq"] = seq
            record["rank"] = -seq if record["lifo"] else seq
        self._last_seq = seq
        self.sequences.number(records, deferred=self._depth > 0)
        rows = [row_of(record) for record in records]
        self._execute_many(self._insert_sql, rows)
        self._remember(records, rows)
        labels = [{"job": r["seq"], "key": k, "value": v} for r in records for k, v in r["labels"].items()]
        if labels:
            JobLabel.insert_many(labels).execute()
        return records

    def _remember(self, records, rows):
        # Most jobs are dispatched soon after they are stored: keeping their records
        # saves reading them back. Bounded by count and size (the rows hold the JSON
        # already encoded); dict order is insertion order, the oldest go first.
        recent, total = self._recent, self._recent_bytes
        for record, row in zip(records, rows):
            size = RECORD_BYTES + len(row[PAYLOAD_COLUMN] or "") + len(row[LABELS_COLUMN])
            recent[record["seq"]] = (record, size)
            total += size
        self._recent_bytes = total
        if len(recent) > RECENT_LIMIT or total > RECENT_BYTES:
            self._evict_recent()

    def _evict_recent(self):
        excess, over, oldest = len(self._recent) - RECENT_LIMIT, self._recent_bytes - RECENT_BYTES, []
        for seq, (_, size) in self._recent.items():
            if excess <= 0 and over <= 0:
                break
            oldest.append(seq)
            excess, over = excess - 1, over - size
        for seq in oldest:
            self._forget_recent(seq)

    def _forget_recent(self, seq):
        """Drop a record from the cache of recent ones; returns it, or None if it was not there."""
        entry = self._recent.pop(seq, None)
        if entry is None:
            return None
        self._recent_bytes -= entry[1]
        return entry[0]

    # -- reads --------------------------------------------------------------------------
    @_after_flush
    def get(self, job_id, now=None):
        """The record of a job by id, or None (also when its result TTL has passed)."""
        row = Job.select().where(Job.id == job_id).dicts().first()
        if row is None or (now is not None and row["expires_at"] is not None and row["expires_at"] <= now):
            return None
        return to_record(row)

    @_after_flush
    def get_many(self, seqs):
        """Records by ``seq``, in the order asked."""
        seqs = list(seqs)
        rows = {}
        for start in range(0, len(seqs), 500):
            chunk = seqs[start:start + 500]
            sql = f"{self._select_head} WHERE {self._quote('seq')} IN ({', '.join([self.param] * len(chunk))})"
            for values in self.db.execute_sql(sql, chunk).fetchall():
                row = dict(zip(COLUMNS, values))
                rows[row["seq"]] = row
        return [to_record(rows[s]) for s in seqs if s in rows]

    def list(self, namespace=None, queue=None, state=None, labels=None, limit=100, after=0, now=None, kind=None):
        """A page of records oldest first, after ``seq`` ``after``, filtered; unexpired only."""
        equal = {name: [value] for name, value in
                 (("namespace", namespace), ("queue", queue), ("state", state), ("kind", kind)) if value is not None}
        return self.query(JobFilter(equal=equal, labels=labels or {}, limit=limit, after=after), now)[0]

    @_after_flush
    def query(self, query_filter, now=None):
        """``(records, total)``: one page of the jobs a :class:`JobFilter` matches, and (when it asks) how many match."""
        return read_page(query_filter, now)

    def optimize(self, now):
        """Refresh the statistics the query planner chooses indexes by, when the jobs doubled or hourly.

        SQLite only (sampled: a few ms at any size): without them it may walk a whole queue in
        ``seq`` order rather than look up the few jobs a filter names. PostgreSQL's autovacuum
        analyzes by itself. Called every turn; costs two comparisons when nothing is due.
        """
        if self.postgres or (self._last_seq < 2 * self._analyzed_seq + 1000 and now < self._analyzed_at + 3600):
            return
        self._analyzed_seq, self._analyzed_at = self._last_seq, now
        self.db.execute_sql("PRAGMA analysis_limit = 1000")
        self.db.execute_sql("ANALYZE")

    @_after_flush
    def set_metadata(self, record, labels, annotations, now):
        """Change a job's labels and annotations: ``{key: value}`` sets, ``{key: None}`` removes; returns the record."""
        merged_labels = _merged(record["labels"], labels)
        merged_annotations = _merged(record["annotations"], annotations)
        self._forget_recent(record["seq"])
        Job.update(labels=dumps(merged_labels), annotations=dumps(merged_annotations), updated_at=now) \
            .where(Job.seq == record["seq"]).execute()
        if labels:
            JobLabel.delete().where((JobLabel.job == record["seq"]) & JobLabel.key.in_(list(labels))).execute()
            rows = [{"job": record["seq"], "key": k, "value": v} for k, v in labels.items() if v is not None]
            if rows:
                JobLabel.insert_many(rows).execute()
        record.update(labels=merged_labels, annotations=merged_annotations, updated_at=now)
        return record

    @_after_flush
    def prune_ended(self, namespace, queue, state, column, keep):
        """Delete the ``state`` jobs of a queue asking to be kept (``column``) beyond the newest ``keep``."""
        field = getattr(Job, column)
        stale = [seq for (seq,) in Job.select(Job.seq)
                 .where((Job.namespace == namespace) & (Job.queue == queue) & (Job.state == state)
                        & (Job.keep_done.is_null(False) | Job.keep_failed.is_null(False)) & field.is_null(False))
                 .order_by(Job.finished_at.desc(), Job.seq.desc()).offset(keep).limit(PRUNE_BATCH).tuples()]
        for seq in stale:
            self._forget_recent(seq)
        if stale:
            JobLabel.delete().where(JobLabel.job.in_(stale)).execute()
            Job.delete().where(Job.seq.in_(stale)).execute()
        return len(stale)

    @_after_flush
    def get_unique(self, namespace, unique_key, now=None):
        """The record of the live job holding ``unique_key`` in ``namespace`` (a client-chosen id), or None."""
        row = Job.select().where((Job.namespace == namespace) & (Job.unique_key == unique_key)).dicts().first()
        if row is None or (now is not None and row["expires_at"] is not None and row["expires_at"] <= now):
            return None
        return to_record(row)

    @_after_flush
    def unended_descendants(self, job_id):
        """Records of jobs not yet ended that name ``job_id`` as their ``parent`` or ``origin``."""
        unended = Job.state.in_(UNENDED)
        found = {}
        for link in (Job.parent, Job.origin):
            for row in Job.select().where((link == job_id) & unended).dicts():
                found[row["seq"]] = to_record(row)
        return [found[seq] for seq in sorted(found)]

    @_after_flush
    def ended_children(self, job_id):
        """``(done, failed)``: how many jobs naming ``job_id`` as ``parent`` have ended, and how (cancelled is failed)."""
        query = (Job.select(Job.state, pw.fn.COUNT(Job.seq))
                 .where((Job.parent == job_id) & Job.state.in_(("done", "failed", "cancelled")))
                 .group_by(Job.state).tuples())
        counts = dict(query)
        return counts.get("done", 0), counts.get("failed", 0) + counts.get("cancelled", 0)

    @_after_flush
    def ready_queues(self):
        """``(namespace, queue, kind)`` of every queue holding queued jobs."""
        query = (Job.select(Job.namespace, Job.queue, Job.kind).where(Job.state == "queued")
                 .group_by(Job.namespace, Job.queue, Job.kind).tuples())
        return list(query)

    @_after_flush
    def ready_after(self, namespace, queue, kind, after, limit):
        """Keys of queued jobs of one queue and kind ordered by priority then rank, past ``after``."""
        query = (Job.select(Job.priority, Job.rank, Job.id)
                 .where((Job.state == "queued") & (Job.namespace == namespace) & (Job.queue == queue)
                        & (Job.kind == kind))
                 .order_by(Job.priority, Job.rank).limit(limit))
        if after is not None:
            query = query.where(pw.Tuple(Job.priority, Job.rank) > pw.Tuple(after[0], after[1]))
        if self.postgres:  # a claim: rows another broker's transaction holds are skipped, not waited on
            query = query.for_update(skip_locked=True)
        return list(query.tuples())

    # -- state changes ------------------------------------------------------------------
    def update(self, seq, **columns):
        """Set columns of one job (JSON columns encoded here); written at the next flush or read."""
        names = tuple(columns)
        sql = self._update_sql.get(names)
        if sql is None:
            assignments = ", ".join(f"{self._quote(n)} = {self.param}" for n in names)
            sql = self._update_sql[names] = \
                f"UPDATE {self._quote(TABLE)} SET {assignments} WHERE {self._quote('seq')} = {self.param}"
        values = [dumps(v) if k in JSON_COLUMNS else v for k, v in columns.items()]
        values.append(seq)
        self._forget_recent(seq)
        self._pending.append((sql, values))

    @_after_flush
    def start(self, seqs, worker, now, lease_until=None):
        """Mark queued jobs running for ``worker`` (one attempt more each); returns their records."""
        seqs = list(seqs)
        for start in range(0, len(seqs), 500):
            chunk = seqs[start:start + 500]
            sql = (f"UPDATE {self._quote(TABLE)} SET state = 'running', worker = {self.param}, "
                   f"attempts = attempts + 1, started_at = {self.param}, updated_at = {self.param}, "
                   f"lease_until = {self.param} WHERE seq IN ({', '.join([self.param] * len(chunk))})")
            self.db.execute_sql(sql, [worker, now, now, lease_until, *chunk])
        records, missing = {}, []
        for seq in seqs:
            record = self._forget_recent(seq)
            if record is None:
                missing.append(seq)
                continue
            record.update(state="running", worker=worker, attempts=record["attempts"] + 1, started_at=now,
                          updated_at=now, lease_until=lease_until)
            records[seq] = record
        if not missing:
            return list(records.values())
        records.update((record["seq"], record) for record in self.get_many(missing))
        return [records[seq] for seq in seqs if seq in records]  # in the order asked: best first

    @_after_flush
    def set_deadlines(self, deadlines):
        """Set the timeout deadline of running jobs: ``{seq: deadline}``."""
        for seq, deadline in deadlines.items():
            Job.update(deadline=deadline).where(Job.seq == seq).execute()

    @_after_flush
    def delete(self, seq):
        """Remove one job and its labels."""
        self._forget_recent(seq)
        JobLabel.delete().where(JobLabel.job == seq).execute()
        Job.delete().where(Job.seq == seq).execute()

    # -- timers -------------------------------------------------------------------------
    @_after_flush
    def next_due(self, timer):
        """The earliest due time of a timer (``delayed``, ``lease``, ``deadline``, ``expiry``), or None."""
        return self.db.execute_sql(self._timer_sql[timer][0]).fetchone()[0]

    @_after_flush
    def due(self, timer, now, limit=1000):
        """Records whose ``timer`` is due at ``now``, earliest first."""
        rows = self.db.execute_sql(self._timer_sql[timer][1], (now, limit)).fetchall()
        records = []
        for values in rows:
            row = dict(zip(COLUMNS, values))
            records.append(to_record(row) | {"deadline": row["deadline"]})
        return records

    def _compile_timers(self):
        """``{timer: (next due SQL, due SQL)}``, each reading only its partial index.

        The conditions are literals, as in the indexes' own WHERE clauses, so that a planner
        can prove the partial index covers the query; SQLite is also told the index by name,
        since without statistics it would rather walk every row of the state.
        """
        table = self._quote(TABLE)
        compiled = {}
        for timer, (column, condition, index) in TIMER_INDEXES.items():
            hint = "" if self.postgres else f" INDEXED BY {self._quote(index)}"
            column = self._quote(column)
            compiled[timer] = (
                f"SELECT MIN({column}) FROM {table}{hint} WHERE {condition}",
                f"{self._select_head}{hint} WHERE {condition} AND {column} <= {self.param} "
                f"ORDER BY {column} LIMIT {self.param}",
            )
        return compiled

    @_after_flush
    def purge_expired(self, now, limit=1000):
        """Delete up to ``limit`` jobs whose result TTL has passed; returns how many."""
        seqs = [s for (s,) in Job.select(Job.seq).where(Job.expires_at.is_null(False) & (Job.expires_at <= now))
                .order_by(Job.expires_at).limit(limit).tuples()]
        if seqs:
            JobLabel.delete().where(JobLabel.job.in_(seqs)).execute()
            Job.delete().where(Job.seq.in_(seqs)).execute()
        return len(seqs)

    @_after_flush
    def running_on_workers(self):
        """Records of jobs leased to worker processes (not to HTTP takers), running or being cancelled."""
        query = Job.select().where(Job.state.in_(("running", "cancelling")) & Job.worker.is_null(False)
                                   & (Job.worker != "http"))
        return [to_record(row) for row in query.dicts()]


def _merged(current, changes):
    """``current`` with ``changes`` applied: a value sets its key, ``None`` removes it."""
    merged = dict(current or {})
    for key, value in (changes or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
