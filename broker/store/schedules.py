"""Storage of schedules: every query on ``tubeway_schedule`` and on the runs schedules made.

Records are dicts of the model's fields with ``job`` (the template) decoded. The
due index covers ``next_run_at`` only for schedules with no run under way, so the
timer finds the next schedule to fire from an index, never a scan.
"""
import orjson
import peewee as pw

from tubeway.core.job import ENDED
from tubeway.core.schedule import RUN_LABEL
from tubeway.broker.store.models import Job, JobLabel, Schedule

ENDED_STATES = tuple(state.value for state in ENDED)


def _record(row):
    record = dict(row)
    record["job"] = orjson.loads(record["job"])
    return record


def count_schedules():
    """Schedules per namespace and queue: ``[(namespace, queue, n)]`` (safe on any thread)."""
    query = (Schedule.select(Schedule.namespace, Schedule.queue, pw.fn.COUNT(Schedule.seq))
             .group_by(Schedule.namespace, Schedule.queue).tuples())
    return list(query)


class ScheduleStore:
    """Schedules in the broker's database; ``jobs`` is its job :class:`~tubeway.broker.store.queries.Store`.

    Queries reading jobs first write the job store's pending updates, so they see
    the turn's changes so far.
    """

    def __init__(self, jobs):
        self.jobs = jobs

    def insert(self, columns):
        """Store a new schedule (``job`` is the template, encoded here); returns its record."""
        row = dict(columns, job=orjson.dumps(columns["job"]).decode())
        seq = Schedule.insert(**row).execute()
        return dict(columns, seq=seq)

    def get(self, namespace, schedule_id):
        """The schedule of this id in ``namespace``, or None."""
        row = Schedule.select().where((Schedule.namespace == namespace) & (Schedule.id == schedule_id)).dicts()
        row = row.first()
        return None if row is None else _record(row)

    def get_by_seq(self, seq):
        """The schedule with this ``seq``, or None."""
        row = Schedule.select().where(Schedule.seq == seq).dicts().first()
        return None if row is None else _record(row)

    def list(self, namespace=None, queue=None, limit=100, after=0):
        """A page of schedules, oldest first, after ``seq`` ``after``."""
        query = Schedule.select().where(Schedule.seq > after)
        if namespace is not None:
            query = query.where(Schedule.namespace == namespace)
        if queue is not None:
            query = query.where(Schedule.queue == queue)
        return [_record(row) for row in query.order_by(Schedule.seq).limit(limit).dicts()]

    def update(self, seq, **columns):
        """Set columns of one schedule."""
        Schedule.update(**columns).where(Schedule.seq == seq).execute()

    def delete(self, seq):
        """Remove one schedule (its runs stay)."""
        Schedule.delete().where(Schedule.seq == seq).execute()

    # -- due times ----------------------------------------------------------------------
    def next_due(self):
        """The earliest ``next_run_at`` of a schedule with no run under way, or None."""
        due = Schedule.next_run_at
        return Schedule.select(pw.fn.MIN(due)).where(Schedule.running.is_null() & due.is_null(False)).scalar()

    def due(self, now, limit=1000):
        """Schedules due at ``now`` with no run under way, earliest first."""
        due = Schedule.next_run_at
        query = (Schedule.select().where(Schedule.running.is_null() & due.is_null(False) & (due <= now))
                 .order_by(due, Schedule.seq).limit(limit))
        return [_record(row) for row in query.dicts()]

    def with_runs(self):
        """``(schedule, state)`` of every schedule with a run under way; ``state`` is its run's, None if it is gone."""
        self.jobs.flush()
        query = (Schedule.select(Schedule, Job.state)
                 .join(Job, pw.JOIN.LEFT_OUTER, on=(Job.id == Schedule.running))
                 .where(Schedule.running.is_null(False)).dicts())
        return [(_record({k: v for k, v in row.items() if k != "state"}), row["state"]) for row in query]

    # -- runs ---------------------------------------------------------------------------
    def ended_runs_past(self, namespace, schedule_id, keep, limit=1000):
        """``seq`` of the ended runs of a schedule older than its newest ``keep`` ended ones."""
        self.jobs.flush()
        runs = JobLabel.select(JobLabel.job).where((JobLabel.key == RUN_LABEL) & (JobLabel.value == schedule_id))
        query = (Job.select(Job.seq)
                 .where((Job.namespace == namespace) & Job.seq.in_(runs) & Job.state.in_(ENDED_STATES))
                 .order_by(Job.seq.desc()).offset(keep).limit(limit).tuples())
        return [seq for (seq,) in query]
