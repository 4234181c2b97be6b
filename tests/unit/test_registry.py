"""The worker registry: registration, liveness, heartbeats, credit and kinds (injected clock)."""
import pytest

from tubeway.broker.registry import Registry, Worker


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def registry(clock):
    return Registry(liveness=10.0, heartbeat=2.0, clock=clock)


def ready(kinds=("echo",), queues=None, credit=1, pid=4242, host="box"):
    return {"kinds": list(kinds), "queues": queues, "credit": credit, "pid": pid, "host": host}


def test_add_get_remove(registry, clock):
    worker = registry.add(b"w1", ready(kinds=["a", "b"], queues=["q"], credit=3))
    assert len(registry) == 1 and registry.get(b"w1") is worker
    assert worker.identity == b"w1" and worker.kinds == {"a", "b"} and worker.queues == {"q"}
    assert worker.credit == 3 and worker.room == 3 and worker.last_seen == clock.now
    assert worker.info == {"pid": 4242, "host": "box"}
    assert registry.remove(b"w1") is worker
    assert registry.remove(b"w1") is None and registry.get(b"w1") is None and len(registry) == 0


def test_readd_replaces_the_worker(registry):
    old = registry.add(b"w1", ready(credit=1))
    old.leases["j"] = object()
    new = registry.add(b"w1", ready(credit=5))
    assert registry.get(b"w1") is new and new is not old and new.leases == {} and len(registry) == 1


def test_ready_defaults(registry):
    worker = registry.add(b"w1", {"kinds": []})
    assert worker.kinds == frozenset() and worker.queues is None and worker.credit == 1
    assert registry.add(b"w2", ready(queues=[])).queues is None  # no list means every queue


def test_leases_the_worker_should_know_of_and_does_not_hold_are_missing(registry):
    worker = registry.add(b"w1", ready(credit=10))
    first, second, third = ({"id": name} for name in ("a", "b", "c"))
    worker.lease(first)
    worker.lease(second)
    worker.sent_jobs()  # JOBS message 1 carried a and b
    worker.lease(third)
    worker.sent_jobs()  # JOBS message 2 carried c
    assert worker.missing(held={"a"}, seen=1) == [second]  # c may still be on its way
    assert worker.missing(held={"a"}, seen=2) == [second, third]
    worker.drop_lease("b")
    assert worker.missing(held=set(), seen=2) == [first, third] and worker.room == 8


def test_seen_refreshes_liveness(registry, clock):
    registry.add(b"w1", ready())
    clock.now += 5
    assert registry.seen(b"w1") is registry.get(b"w1")
    assert registry.get(b"w1").last_seen == clock.now
    assert registry.seen(b"unknown") is None and len(registry) == 1


def test_lost_after_liveness(registry, clock):
    registry.add(b"quiet", ready())
    registry.add(b"chatty", ready())
    clock.now += 10.0
    assert registry.lost() == []  # exactly the liveness period is still alive
    registry.seen(b"chatty")
    clock.now += 0.5
    assert [w.identity for w in registry.lost()] == [b"quiet"]
    clock.now += 10.0
    assert {w.identity for w in registry.lost()} == {b"quiet", b"chatty"}
    assert len(registry) == 2  # lost() reports; the reactor removes


def test_heartbeat_due_at_once_then_every_period(registry, clock):
    registry.add(b"w1", ready())
    assert [w.identity for w in registry.heartbeat_due()] == [b"w1"]
    assert registry.heartbeat_due() == []
    assert registry.get(b"w1").next_heartbeat == clock.now + 2.0
    clock.now += 1.9
    assert registry.heartbeat_due() == []
    clock.now += 0.1
    assert [w.identity for w in registry.heartbeat_due()] == [b"w1"]
    assert registry.get(b"w1").next_heartbeat == clock.now + 2.0


def test_heartbeat_schedule_is_per_worker(registry, clock):
    registry.add(b"w1", ready())
    registry.heartbeat_due()
    clock.now += 1.0
    registry.add(b"w2", ready())
    assert [w.identity for w in registry.heartbeat_due()] == [b"w2"]
    clock.now += 1.0
    assert [w.identity for w in registry.heartbeat_due()] == [b"w1"]
    clock.now += 1.0
    assert [w.identity for w in registry.heartbeat_due()] == [b"w2"]


def test_heartbeat_does_not_count_as_seen(registry, clock):
    registry.add(b"w1", ready())
    clock.now += 11.0
    registry.heartbeat_due()
    assert [w.identity for w in registry.lost()] == [b"w1"]


def test_with_room_by_credit_and_leases(registry):
    one = registry.add(b"one", ready(credit=1))
    two = registry.add(b"two", ready(credit=2))
    assert {w.identity for w in registry.with_room()} == {b"one", b"two"}
    one.leases["j1"] = "lease"
    two.leases["j2"] = "lease"
    assert one.room == 0 and two.room == 1
    assert [w.identity for w in registry.with_room()] == [b"two"]
    two.leases["j3"] = "lease"
    assert registry.with_room() == []
    del two.leases["j2"]  # a result frees one credit
    assert [w.identity for w in registry.with_room()] == [b"two"]


def test_kinds_union(registry):
    assert registry.kinds() == []
    registry.add(b"w1", ready(kinds=["resize", "echo"]))
    registry.add(b"w2", ready(kinds=["echo", "http"]))
    registry.add(b"w3", ready(kinds=[]))
    assert registry.kinds() == ["echo", "http", "resize"]
    registry.remove(b"w1")
    assert registry.kinds() == ["echo", "http"]


def test_worker_name_says_where_it_runs():
    worker = Worker(b"\x00\x01\x02\x03\xaa\xbb\xcc\xdd", ["k"], None, 1, {"host": "node-7", "pid": 31337}, 0.0)
    assert "node-7" in worker.name and "31337" in worker.name
    assert worker.name.endswith("aabbccdd") and len(worker.name) <= 64


def test_worker_names_differ_per_connection():
    info = {"host": "node", "pid": 1}
    names = {Worker(bytes([0, 0, 0, 0, 0, 0, 0, n]), [], None, 1, info, 0.0).name for n in range(5)}
    assert len(names) == 5


def test_worker_name_without_host_or_pid():
    name = Worker(b"\x01" * 5, [], None, 1, {}, 0.0).name
    assert name == "?/0/01010101"  # ZeroMQ identities end in a 4-byte counter


def test_worker_name_of_a_long_host_is_bounded():
    worker = Worker(b"\x00\x11\x22\x33\x44", [], None, 1, {"host": "h" * 100, "pid": 99}, 0.0)
    assert len(worker.name) == 64 and worker.name.endswith("h/99/11223344")
