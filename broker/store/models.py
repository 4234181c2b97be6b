"""Peewee models of the broker's storage, and opening the database a URL names.

The database is injected through :data:`database` (a :class:`peewee.DatabaseProxy`)
so the same models serve SQLite and PostgreSQL. JSON columns hold orjson text.
Partial indexes cover each due-time column only for the rows that can fire, so
every timer finds its next due row from an index, never a scan.
"""
import os
from urllib.parse import parse_qs, unquote, urlparse

import peewee as pw
from playhouse.migrate import SchemaMigrator, migrate

from tubeway.core.errors import ConfigError

database = pw.DatabaseProxy()


class BaseModel(pw.Model):
    """Base of every storage model: bound to the injected database."""

    class Meta:
        database = database


class Job(BaseModel):
    """One job: the native record, with JSON columns for payload, result and friends."""

    seq = pw.BigAutoField()
    id = pw.CharField(max_length=36, unique=True)
    namespace = pw.CharField(max_length=200)
    queue = pw.CharField(max_length=200)
    kind = pw.CharField(max_length=200)
    state = pw.CharField(max_length=16)
    priority = pw.IntegerField()
    payload = pw.TextField(null=True)
    run_at = pw.DoubleField(null=True)
    attempts = pw.IntegerField(default=0)
    max_attempts = pw.IntegerField(default=1)
    backoff = pw.TextField(null=True)
    timeout = pw.DoubleField(null=True)
    result_ttl = pw.DoubleField(null=True)
    callback_url = pw.TextField(null=True)
    unique_key = pw.CharField(max_length=200, null=True)
    labels = pw.TextField(null=True)
    parent = pw.CharField(max_length=36, null=True)
    #: The job whose spawn tree this job belongs to: the first job that spawned (set by the broker).
    origin = pw.CharField(max_length=36, null=True)
    result = pw.TextField(null=True)
    error = pw.TextField(null=True)
    progress = pw.TextField(null=True)
    logs = pw.TextField(null=True)
    worker = pw.CharField(max_length=64, null=True)
    lease_until = pw.DoubleField(null=True)
    deadline = pw.DoubleField(null=True)
    created_at = pw.DoubleField()
    started_at = pw.DoubleField(null=True)
    finished_at = pw.DoubleField(null=True)
    updated_at = pw.DoubleField()
    expires_at = pw.DoubleField(null=True)
    #: A name the client gave (not unique), to find jobs by.
    name = pw.CharField(max_length=200, null=True)
    #: ``{key: text}`` notes on the job, changeable after creation like its labels, not filtered on.
    annotations = pw.TextField(null=True)
    #: The job's number in its queue: 1, 2, ... in the order created, never reused (see QueueCounter).
    sequence = pw.BigIntegerField(null=True)
    #: Its place among the queued jobs of its priority, lowest first: ``seq``, or ``-seq`` for a lifo job.
    rank = pw.BigIntegerField(null=True)
    #: How many ended jobs of its queue in the state done (failed) that ask the same to keep (None: all).
    keep_done = pw.IntegerField(null=True)
    keep_failed = pw.IntegerField(null=True)

    class Meta:
        table_name = "tubeway_job"


class JobLabel(BaseModel):
    """One label of a job, for filtering lists by ``key:value``."""

    job = pw.BigIntegerField()
    key = pw.CharField(max_length=200)
    value = pw.CharField(max_length=1000)

    class Meta:
        table_name = "tubeway_job_label"
        primary_key = pw.CompositeKey("job", "key")
        indexes = ((("key", "value", "job"), False),)


class Schedule(BaseModel):
    """A schedule: a job template run every ``period`` seconds or once (see :mod:`tubeway.core.schedule`).

    ``next_run_at`` is when the next run is due; ``running`` the id of its run not yet
    ended (none fires meanwhile), ``last_run`` that of the latest run, ``runs`` how many fired,
    ``id_label`` the extra label each run carries holding the schedule's id (or null).
    """

    seq = pw.BigAutoField()
    id = pw.CharField(max_length=200)
    namespace = pw.CharField(max_length=200)
    queue = pw.CharField(max_length=200)
    job = pw.TextField()
    period = pw.DoubleField(null=True)
    offset = pw.DoubleField(column_name="offset_seconds")
    policy = pw.CharField(max_length=16)
    created_at = pw.DoubleField()
    first_run_at = pw.DoubleField()
    next_run_at = pw.DoubleField(null=True)
    running = pw.CharField(max_length=36, null=True)
    last_run = pw.CharField(max_length=36, null=True)
    runs = pw.BigIntegerField(default=0)
    updated_at = pw.DoubleField()
    id_label = pw.CharField(max_length=200, null=True)

    class Meta:
        table_name = "tubeway_schedule"
        indexes = ((("namespace", "id"), True), (("namespace", "queue", "seq"), False))


class Counter(BaseModel):
    """A named counter the broker increments in its transaction: generated ids, sequence numbers."""

    name = pw.CharField(max_length=200, primary_key=True)
    value = pw.BigIntegerField()

    class Meta:
        table_name = "tubeway_counter"


class QueueCounter(BaseModel):
    """The last ``sequence`` number given to a job of one queue; kept when its jobs are deleted, so none repeats."""

    namespace = pw.CharField(max_length=200)
    queue = pw.CharField(max_length=200)
    last = pw.BigIntegerField()

    class Meta:
        table_name = "tubeway_queue_counter"
        primary_key = pw.CompositeKey("namespace", "queue")


class Endpoint(BaseModel):
    """The HTTP endpoint that processes one queue's ``push`` jobs (see :mod:`tubeway.broker.endpoints`)."""

    namespace = pw.CharField(max_length=200)
    queue = pw.CharField(max_length=200)
    url = pw.TextField()
    method = pw.CharField(max_length=8)
    headers = pw.TextField(null=True)
    timeout = pw.DoubleField()
    concurrency = pw.IntegerField()
    updated_at = pw.DoubleField()

    class Meta:
        table_name = "tubeway_endpoint"
        primary_key = pw.CompositeKey("namespace", "queue")


class BrokerKey(BaseModel):
    """A secret the broker made once and keeps (hex): the key lock tokens are made with."""

    name = pw.CharField(max_length=200, primary_key=True)
    value = pw.TextField()

    class Meta:
        table_name = "tubeway_broker_key"


def _add_indexes():
    running = Job.state == "running"
    Job.add_index(Job.index(Job.state, Job.namespace, Job.queue, Job.kind, Job.priority, Job.rank,
                            name="job_ready_rank"))
    Job.add_index(Job.index(Job.namespace, Job.queue, Job.seq, name="job_by_queue"))
    Job.add_index(Job.index(Job.namespace, Job.unique_key, unique=True, name="job_unique_key")
                  .where(Job.unique_key.is_null(False)))
    Job.add_index(Job.index(Job.run_at, name="job_delayed").where(Job.state == "delayed"))
    Job.add_index(Job.index(Job.lease_until, name="job_lease").where(running & Job.lease_until.is_null(False)))
    Job.add_index(Job.index(Job.deadline, name="job_deadline").where(running & Job.deadline.is_null(False)))
    Job.add_index(Job.index(Job.worker, name="job_worker").where(running & Job.worker.is_null(False)))
    Job.add_index(Job.index(Job.expires_at, name="job_expiry").where(Job.expires_at.is_null(False)))
    Job.add_index(Job.index(Job.parent, Job.state, name="job_parent_state").where(Job.parent.is_null(False)))
    Job.add_index(Job.index(Job.origin, Job.state, name="job_origin").where(Job.origin.is_null(False)))
    Job.add_index(Job.index(Job.namespace, Job.name, name="job_name").where(Job.name.is_null(False)))
    Job.add_index(Job.index(Job.namespace, Job.queue, Job.sequence, name="job_sequence"))
    Job.add_index(Job.index(Job.namespace, Job.queue, Job.state, Job.finished_at, name="job_retained")
                  .where(Job.keep_done.is_null(False) | Job.keep_failed.is_null(False)))
    Schedule.add_index(Schedule.index(Schedule.next_run_at, name="schedule_due")
                       .where(Schedule.running.is_null() & Schedule.next_run_at.is_null(False)))
    Schedule.add_index(Schedule.index(Schedule.running, name="schedule_running")
                       .where(Schedule.running.is_null(False)))


_add_indexes()
MODELS = (Job, JobLabel, Schedule, Counter, QueueCounter, BrokerKey, Endpoint)
#: Indexes older versions created that a newer one replaced: dropped when the database is opened.
RETIRED_INDEXES = ("job_parent", "job_ready",
                   # updated_at changes as a job starts and ends: indexing it cost the durable default about
                   # a quarter of its throughput, for lists ordered by it (they sort instead, off the loop)
                   "job_queue_updated", "job_updated")


def open_database(url, synchronous="FULL"):
    """Open (and create the tables of) the database a URL names: ``sqlite:///path`` or ``postgresql://...``."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy and Peewee write them
        path = unquote(parsed.path[1:] if parsed.path.startswith("/") else parsed.path)
        path = path or ":memory:"
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        db = pw.SqliteDatabase(path, pragmas={
            "journal_mode": "wal", "synchronous": synchronous, "cache_size": -64000,
            "foreign_keys": 0, "busy_timeout": 5000,
        })
    elif parsed.scheme in ("postgres", "postgresql"):
        extra = {}
        search_path = parse_qs(parsed.query).get("search_path")
        if search_path:  # e.g. ?search_path=tubeway keeps Tubeway's tables in their own schema
            extra["options"] = f"-c search_path={search_path[0]}"
        db = pw.PostgresqlDatabase(
            unquote(parsed.path.lstrip("/")) or "postgres", user=unquote(parsed.username or "") or None,
            password=unquote(parsed.password or "") or None, host=parsed.hostname, port=parsed.port or 5432,
            **extra,
        )
    else:
        raise ConfigError(f"db: unsupported database URL '{url}' (use sqlite:///PATH or postgresql://...)")
    database.initialize(db)
    db.connect(reuse_if_open=True)
    if "rank" in add_missing_columns(db).get(Job._meta.table_name, ()):
        Job.update(rank=Job.seq).execute()  # jobs stored before ranks were: first in, first out
    db.create_tables(MODELS, safe=True)
    for name in RETIRED_INDEXES:
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
    return db


def add_missing_columns(db):
    """Add the columns a newer Tubeway declares to tables an older one created (all are nullable).

    Returns ``{table: [column]}`` of what was added.
    """
    added = {}
    for model in MODELS:
        table = model._meta.table_name
        if not db.table_exists(table):
            continue
        present = {column.name for column in db.get_columns(table)}
        missing = [field for field in model._meta.sorted_fields if field.column_name not in present]
        if missing:
            migrator = SchemaMigrator.from_database(db)
            migrate(*[migrator.add_column(table, field.column_name, field) for field in missing])
            added[table] = [field.column_name for field in missing]
    return added


def is_postgres(db):
    """True when the database is PostgreSQL (claims use ``FOR UPDATE SKIP LOCKED`` there)."""
    return isinstance(db, pw.PostgresqlDatabase)
