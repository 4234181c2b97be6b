"""Due timers: the earliest due time per kind, fired from a (fake) store's index."""
import pytest

from tubeway.broker.timers import TIMERS, DueTimer, Timers


class FakeStore:
    """Due times per timer kind; records fired are handled (leave the index) as the lifecycle does."""

    def __init__(self):
        self.items = {name: [] for name in TIMERS}
        self.next_due_calls = 0

    def add(self, timer, due_at, job_id):
        self.items[timer].append((due_at, job_id))

    def next_due(self, timer):
        self.next_due_calls += 1
        return min((due for due, _ in self.items[timer]), default=None)

    def due(self, timer, now, limit=1000):
        fired = sorted(item for item in self.items[timer] if item[0] <= now)[:limit]
        for item in fired:
            self.items[timer].remove(item)
        return [{"id": job_id, "due": due} for due, job_id in fired]


def test_timer_kinds():
    assert TIMERS == ("delayed", "lease", "deadline", "expiry")


def test_new_timer_is_never_due():
    timer = DueTimer("lease", FakeStore())
    assert timer.next_at is None and not timer.is_due(10**12)


def test_note_keeps_the_earliest():
    timer = DueTimer("delayed", FakeStore())
    timer.note(50.0)
    timer.note(70.0)
    assert timer.next_at == 50.0
    timer.note(30.0)
    timer.note(None)
    timer.note(40.0)
    assert timer.next_at == 30.0


def test_is_due_at_and_after_its_time():
    timer = DueTimer("lease", FakeStore())
    timer.note(100.0)
    assert not timer.is_due(99.999)
    assert timer.is_due(100.0) and timer.is_due(250.0)


def test_refresh_reads_the_store():
    store = FakeStore()
    store.add("expiry", 20.0, "b")
    store.add("expiry", 10.0, "a")
    store.add("lease", 5.0, "c")
    timer = DueTimer("expiry", store)
    timer.refresh()
    assert timer.next_at == 10.0


def test_refresh_may_move_later_and_to_none():
    store = FakeStore()
    timer = DueTimer("delayed", store)
    timer.note(1.0)  # a due time whose job has since been cancelled
    timer.refresh()
    assert timer.next_at is None and not timer.is_due(5.0)


def test_take_due_fires_in_order_and_refreshes():
    store = FakeStore()
    for due, job_id in [(30.0, "c"), (10.0, "a"), (20.0, "b"), (90.0, "later")]:
        store.add("delayed", due, job_id)
    timer = DueTimer("delayed", store)
    timer.refresh()
    assert timer.is_due(30.0)
    assert [r["id"] for r in timer.take_due(30.0)] == ["a", "b", "c"]
    assert timer.next_at == 90.0 and not timer.is_due(30.0)
    assert timer.take_due(89.0) == [] and timer.next_at == 90.0


def test_take_due_stays_due_when_the_limit_is_reached():
    store = FakeStore()
    for n in range(5):
        store.add("lease", float(n), f"j{n}")
    timer = DueTimer("lease", store)
    timer.refresh()
    calls = store.next_due_calls
    assert [r["id"] for r in timer.take_due(10.0, limit=2)] == ["j0", "j1"]
    assert store.next_due_calls == calls  # a full page: more may be due, no refresh
    assert timer.is_due(10.0)
    assert [r["id"] for r in timer.take_due(10.0, limit=2)] == ["j2", "j3"]
    assert [r["id"] for r in timer.take_due(10.0, limit=2)] == ["j4"]
    assert store.next_due_calls == calls + 1 and timer.next_at is None


def test_take_due_with_nothing_due_refreshes():
    store = FakeStore()
    timer = DueTimer("deadline", store)
    timer.note(5.0)
    store.add("deadline", 7.0, "x")
    assert timer.take_due(5.0) == []
    assert timer.next_at == 7.0


def test_note_after_refresh_keeps_an_earlier_stored_time():
    store = FakeStore()
    store.add("expiry", 15.0, "a")
    timer = DueTimer("expiry", store)
    timer.refresh()
    timer.note(40.0)
    assert timer.next_at == 15.0


def test_timers_one_per_kind():
    timers = Timers(FakeStore(), clock=lambda: 0.0)
    assert {timers[name].name for name in TIMERS} == set(TIMERS)
    assert timers["lease"] is timers["lease"] and timers["lease"] is not timers["expiry"]
    with pytest.raises(KeyError):
        timers["nope"]


def test_timers_refresh_and_next_at_across_kinds():
    store = FakeStore()
    store.add("delayed", 50.0, "a")
    store.add("expiry", 20.0, "b")
    timers = Timers(store)
    assert timers.next_at() is None and timers.due(10**12) == []
    timers.refresh()
    assert timers.next_at() == 20.0
    timers["lease"].note(12.5)
    assert timers.next_at() == 12.5
    assert timers["delayed"].next_at == 50.0 and timers["deadline"].next_at is None


def test_timers_due_lists_only_due_kinds():
    timers = Timers(FakeStore())
    timers["delayed"].note(10.0)
    timers["lease"].note(20.0)
    timers["expiry"].note(30.0)
    assert timers.due(5.0) == []
    assert [t.name for t in timers.due(20.0)] == ["delayed", "lease"]
    assert {t.name for t in timers.due(30.0)} == {"delayed", "lease", "expiry"}


def test_firing_one_kind_leaves_the_others():
    store = FakeStore()
    store.add("delayed", 1.0, "a")
    store.add("lease", 2.0, "b")
    timers = Timers(store)
    timers.refresh()
    for timer in timers.due(3.0):
        if timer.name == "delayed":
            assert [r["id"] for r in timer.take_due(3.0)] == ["a"]
    assert [t.name for t in timers.due(3.0)] == ["lease"]
    assert timers.next_at() == 2.0
