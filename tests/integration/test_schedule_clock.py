"""Schedules in a real broker on a fake clock: firing, no overlap, restarts, run-once, deletion.

The broker runs turn by turn (no socket): each test sets the clock, calls
``turn``, and reads storage, so every due time is checked exactly, on SQLite and
PostgreSQL.
"""
import pytest

from tubeway.broker.reactor import Broker
from tubeway.broker.store.models import open_database
from tubeway.core import protocol as p
from tubeway.core.errors import JobConflict, JobNotFound
from tubeway.core.schedule import normalize_schedule
from tubeway.core.settings import load_settings

pytestmark = pytest.mark.integration
T0 = 1_000_000.0


class Clock:
    """A clock the test moves."""

    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


class Rig:
    """A broker on a fake clock, driven turn by turn; ``restart`` builds a new one on the same storage."""

    def __init__(self, db_url, **settings):
        self.settings = load_settings({"db": db_url, **settings}, env={})
        self.clock = Clock()
        self.broker = None
        self.start()

    def start(self):
        self.db = open_database(self.settings.database_url)
        self.broker = Broker(self.settings, self.db, clock=self.clock)
        self.broker.recover()

    def restart(self, at):
        self.db.close()
        self.clock.now = at
        self.start()

    def command(self, command, body):
        with self.broker.store.atomic():
            return self.broker.commands.handlers[command](b"peer", b"1", body)

    def add(self, **spec):
        spec.setdefault("job", {"kind": "echo"})
        return self.command(p.SCHEDULE_ADD, normalize_schedule(spec))

    def schedule(self, schedule_id, namespace="default"):
        return self.command(p.SCHEDULE_GET, {"namespace": namespace, "id": schedule_id})

    def at(self, now):
        """Move the clock and run one turn of the loop."""
        self.clock.now = now
        self.broker.turn([])

    def runs(self, schedule_id):
        return self.broker.store.list(labels={"schedule": schedule_id}, limit=1000)

    def end_run(self, schedule_id, state="done"):
        """End the schedule's run under way, as a worker's result would."""
        run = self.broker.store.get(self.schedule(schedule_id)["running"])
        with self.broker.store.atomic():
            self.broker.jobs.finish(run, state, result="ran")

    def close(self):
        self.db.close()


@pytest.fixture
def rig(db_url):
    rig = Rig(db_url)
    try:
        yield rig
    finally:
        rig.close()


def test_every_fires_at_the_due_time_and_on_the_grid(rig):
    rig.add(id="s", period=10, offset=5)
    rig.at(T0 + 4.999)
    assert rig.runs("s") == []
    rig.at(T0 + 5)
    [run] = rig.runs("s")
    assert run["created_at"] == T0 + 5 and run["labels"] == {"schedule": "s"} and run["state"] == "queued"
    schedule = rig.schedule("s")
    assert (schedule["running"], schedule["next_run_at"], schedule["runs"]) == (run["id"], T0 + 15, 1)
    rig.end_run("s")
    rig.at(T0 + 14.9)
    assert len(rig.runs("s")) == 1
    rig.at(T0 + 15.2)
    assert len(rig.runs("s")) == 2 and rig.schedule("s")["next_run_at"] == T0 + 25


def test_a_run_never_starts_while_the_previous_has_not_ended(rig):
    rig.add(id="s", period=10)
    rig.at(T0)
    for now in (T0 + 10, T0 + 20, T0 + 95):  # slots pass while the first run is still queued
        rig.at(now)
    assert len(rig.runs("s")) == 1
    rig.clock.now = T0 + 97
    rig.end_run("s")
    rig.at(T0 + 97)
    assert len(rig.runs("s")) == 2  # one run for all the missed slots
    assert rig.schedule("s")["next_run_at"] == T0 + 100
    rig.at(T0 + 99)
    assert len(rig.runs("s")) == 2


def test_after_end_is_due_period_after_the_previous_run_ended(rig):
    rig.add(id="s", period=10, policy="after_end")
    rig.at(T0)
    assert rig.schedule("s")["next_run_at"] is None  # the run's end decides
    rig.clock.now = T0 + 33
    rig.end_run("s", state="failed")  # a failed run ends too
    assert rig.schedule("s")["next_run_at"] == T0 + 43
    rig.at(T0 + 42.9)
    assert len(rig.runs("s")) == 1
    rig.at(T0 + 43)
    assert len(rig.runs("s")) == 2


def test_a_deleted_schedule_never_fires_even_when_already_due(rig):
    rig.add(id="s", period=10)
    rig.at(T0)
    rig.clock.now = T0 + 30
    deleted = rig.command(p.SCHEDULE_DELETE, {"namespace": "default", "id": "s"})
    assert deleted["id"] == "s"
    [run] = rig.runs("s")
    with rig.broker.store.atomic():
        rig.broker.jobs.finish(rig.broker.store.get(run["id"]), "done")
    for now in (T0 + 30, T0 + 40, T0 + 1000):
        rig.at(now)
    assert [r["id"] for r in rig.runs("s")] == [run["id"]]  # its run stays, an ordinary job
    with pytest.raises(JobNotFound):
        rig.schedule("s")


def test_a_schedule_due_and_deleted_in_the_same_turn_does_not_fire(rig):
    rig.add(id="s", period=10, offset=5)
    rig.clock.now = T0 + 50
    rig.command(p.SCHEDULE_DELETE, {"namespace": "default", "id": "s"})
    rig.at(T0 + 50)
    assert rig.runs("s") == []


def test_runs_missed_while_the_broker_was_down_fire_once_on_start(rig):
    rig.add(id="every", period=10)
    rig.add(id="after", period=10, policy="after_end")
    rig.at(T0)
    rig.clock.now = T0 + 1
    rig.end_run("every")
    rig.end_run("after")
    rig.restart(at=T0 + 105)  # down for ten periods
    rig.at(T0 + 105)
    assert len(rig.runs("every")) == 2 and len(rig.runs("after")) == 2
    assert rig.schedule("every")["next_run_at"] == T0 + 110
    rig.end_run("every")
    rig.at(T0 + 109)
    assert len(rig.runs("every")) == 2


def test_a_run_under_way_at_a_restart_still_frees_its_schedule_when_it_ends(rig):
    rig.add(id="s", period=10)
    rig.at(T0)
    rig.restart(at=T0 + 3)
    rig.clock.now = T0 + 4
    rig.end_run("s")
    rig.at(T0 + 10)
    assert len(rig.runs("s")) == 2


def test_a_run_once_schedule_fires_once_and_is_removed_when_its_run_ends(rig):
    rig.add(id="once", period=None, offset=2)
    rig.at(T0 + 2)
    [run] = rig.runs("once")
    assert rig.schedule("once")["running"] == run["id"]  # visible until its run ended
    rig.end_run("once")
    with pytest.raises(JobNotFound):
        rig.schedule("once")
    rig.at(T0 + 100)
    assert [r["state"] for r in rig.runs("once")] == ["done"]


def test_deleting_or_cancelling_the_run_frees_the_schedule(rig):
    rig.add(id="s", period=10)
    rig.at(T0)
    first = rig.schedule("s")["running"]
    rig.clock.now = T0 + 1
    rig.command(p.CANCEL, {"id": first})
    rig.at(T0 + 10)
    second = rig.schedule("s")["running"]
    assert second not in (None, first)
    rig.command(p.DELETE, {"id": second})
    assert rig.schedule("s")["running"] is None
    rig.at(T0 + 20)
    assert len(rig.runs("s")) == 2  # the first, cancelled, and the third; the second was deleted


def test_ended_runs_past_the_setting_are_purged_newest_kept(db_url):
    rig = Rig(db_url, schedule_keep_runs=3)
    try:
        rig.add(id="s", period=10)
        fired = []
        for slot in range(6):
            rig.at(T0 + 10 * slot)
            fired.append(rig.schedule("s")["running"])
            rig.clock.now = T0 + 10 * slot + 1
            rig.end_run("s")
        assert [r["id"] for r in rig.runs("s")] == fired[-3:]
    finally:
        rig.close()


def test_ids_are_generated_from_a_counter_that_survives_restarts(rig):
    assert rig.add()["id"] == "1"
    rig.add(id="3")
    assert rig.add()["id"] == "2"
    assert rig.add()["id"] == "4"  # "3" was chosen by a client: skipped
    rig.command(p.SCHEDULE_DELETE, {"namespace": "default", "id": "4"})
    rig.restart(at=T0 + 1)
    assert rig.add()["id"] == "5"  # never reused, even after a delete and a restart


def test_ids_are_unique_per_namespace(rig):
    rig.add(id="x")
    assert rig.add(id="x", job={"kind": "echo", "namespace": "other"})["namespace"] == "other"
    with pytest.raises(JobConflict):
        rig.add(id="x")
    assert rig.schedule("x", namespace="other")["namespace"] == "other"
