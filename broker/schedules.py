"""Schedules in the broker: create, read, delete; fire runs when due; free a schedule when its run ends.

Firing stores the run (an ordinary job labelled ``schedule: <id>``) in the same
transaction as the schedule's new state: the run under way (``running``) and, for
the ``every`` policy, the next due time. While a run is under way the schedule is
out of the due index, so runs never overlap. When the run ends (any way: done,
failed, cancelled, deleted) :meth:`Schedules.run_ended` sets the next due time from
the policy, or removes a run-once schedule, and purges ended runs past the newest
``schedule_keep_runs``. The runs under way are remembered in memory (rebuilt at
start), so ending an ordinary job costs one dict lookup.
"""
from tubeway.core.errors import JobConflict, JobNotFound
from tubeway.core.schedule import RUN_LABEL, due_after_end, due_after_fire, first_due
from tubeway.broker.store import counters
from tubeway.broker.store.schedules import ScheduleStore
from tubeway.broker.timers import DueTimer

#: The counter generated schedule ids come from.
ID_COUNTER = "schedule_id"
DEFAULT_KEEP_RUNS = 100
#: Most schedules fired in one turn (the rest fire in the next).
FIRE_LIMIT = 1000


class ScheduleTimer(DueTimer):
    """The due timer of schedules: the earliest ``next_run_at`` of a schedule with no run under way."""

    def refresh(self):
        """Ask storage for the earliest due time."""
        self.next_at = self.store.next_due()


def public_schedule(record):
    """A schedule as clients see it (``seq`` dropped)."""
    return {k: v for k, v in record.items() if k != "seq"}


class Schedules:
    """The broker's schedules, bound to its job lifecycle (which stores the runs)."""

    def __init__(self, lifecycle):
        self.jobs = lifecycle
        self.store = ScheduleStore(lifecycle.store)
        self.timer = ScheduleTimer("schedule", self.store)
        lifecycle.timers.add(self.timer)
        self.runs = {}  # id of a run under way -> its schedule's seq

    @property
    def keep_runs(self):
        """How many ended runs each schedule keeps (setting ``schedule_keep_runs``)."""
        return int(getattr(self.jobs.settings, "schedule_keep_runs", DEFAULT_KEEP_RUNS))

    def load(self):
        """At start: remember the runs under way; a schedule whose run ended unnoticed is freed now."""
        now = self.jobs.clock()
        self.runs.clear()
        for schedule, state in self.store.with_runs():
            if state in (None, "done", "failed", "cancelled"):
                self._run_over(schedule, now)
            else:
                self.runs[schedule["running"]] = schedule["seq"]
        self.timer.refresh()

    # -- client commands --------------------------------------------------------------
    def add(self, spec):
        """Store a normalized schedule spec; its id generated when it has none. JobConflict if the id is taken."""
        now = self.jobs.clock()
        template = spec["job"]
        namespace = template["namespace"]
        schedule_id = spec["id"] if spec["id"] is not None else self._generated_id(namespace)
        if self.store.get(namespace, schedule_id) is not None:
            raise JobConflict(f"schedule {schedule_id} already exists in namespace {namespace}", id=schedule_id)
        first = first_due(now, spec["offset"])
        record = self.store.insert({
            "id": schedule_id, "namespace": namespace, "queue": template["queue"], "job": template,
            "period": spec["period"], "offset": spec["offset"], "policy": spec["policy"],
            "id_label": spec.get("id_label"), "created_at": now,
            "first_run_at": first, "next_run_at": first, "running": None, "last_run": None, "runs": 0,
            "updated_at": now,
        })
        self.timer.note(first)
        return public_schedule(record)

    def _generated_id(self, namespace):
        while True:  # a client may have chosen a number the counter reaches later: skip it
            candidate = str(counters.next_value(ID_COUNTER))
            if self.store.get(namespace, candidate) is None:
                return candidate

    def get(self, namespace, schedule_id):
        """The schedule of this id in ``namespace``; JobNotFound if there is none."""
        record = self.store.get(namespace, schedule_id)
        if record is None:
            raise JobNotFound(f"schedule {schedule_id} not found in namespace {namespace}")
        return record

    def list(self, namespace=None, queue=None, limit=100, after=0):
        """A page of schedule records, oldest first."""
        return self.store.list(namespace, queue, limit, after)

    def delete(self, namespace, schedule_id):
        """Remove a schedule: it never fires again (a run under way goes on, an ordinary job). Returns it as it was."""
        record = self.get(namespace, schedule_id)
        self.store.delete(record["seq"])
        if record["running"] is not None:
            self.runs.pop(record["running"], None)
        return public_schedule(record)

    # -- firing -------------------------------------------------------------------------
    def fire_due(self, now):
        """Start a run of every schedule due at ``now`` with none under way."""
        for schedule in self.store.due(now, FIRE_LIMIT):
            self._fire(schedule, now)
        self.timer.refresh()

    def _fire(self, schedule, now):
        template = schedule["job"]
        labels = {**template["labels"], RUN_LABEL: schedule["id"]}
        if schedule.get("id_label"):
            labels[schedule["id_label"]] = schedule["id"]
        spec = dict(template, labels=labels)
        [run_id], _, _ = self.jobs.submit([spec])
        self.store.update(schedule["seq"], running=run_id, last_run=run_id, runs=schedule["runs"] + 1,
                          next_run_at=due_after_fire(schedule, now), updated_at=now)
        self.runs[run_id] = schedule["seq"]
        self.jobs.metrics.schedule_fired(schedule)

    # -- runs ending --------------------------------------------------------------------
    def run_ended(self, record):
        """A job ended or was deleted: if it is a schedule's run under way, the schedule goes on."""
        seq = self.runs.pop(record["id"], None)
        if seq is None:
            return
        schedule = self.store.get_by_seq(seq)
        if schedule is not None and schedule["running"] == record["id"]:
            self._run_over(schedule, record.get("finished_at") or self.jobs.clock())

    def _run_over(self, schedule, now):
        """Set the next due time of a schedule whose run ended (or remove a run-once one); purge old runs."""
        due = due_after_end(schedule, now)
        if schedule["period"] is None:
            self.store.delete(schedule["seq"])
        else:
            self.store.update(schedule["seq"], running=None, next_run_at=due, updated_at=now)
            self.timer.note(due)
        for seq in self.store.ended_runs_past(schedule["namespace"], schedule["id"], self.keep_runs):
            self.jobs.store.delete(seq)
