"""Ready windows and the dispatcher, against a fake store that plays storage's part."""
import collections
import itertools
import random

import pytest

from tubeway.broker.dispatch import Dispatcher, Window


class FakeStore:
    """Queued job keys per ``(namespace, queue, kind)``, answering like ``Store.ready_after``."""

    def __init__(self):
        self.queued = {}  # key -> {id: (priority, seq, id)}
        self.calls = []
        self._seq = itertools.count(1)

    def new(self, kind="k", priority=0, namespace="ns", queue="q", lifo=False):
        seq = next(self._seq)
        return {"id": f"j{seq}", "seq": seq, "rank": -seq if lifo else seq, "priority": priority,
                "namespace": namespace, "queue": queue, "kind": kind}

    def enqueue(self, record):
        key = (record["namespace"], record["queue"], record["kind"])
        self.queued.setdefault(key, {})[record["id"]] = (record["priority"], record["rank"], record["id"])

    def remove(self, job_id):
        for jobs in self.queued.values():
            jobs.pop(job_id, None)

    def ready_queues(self):
        return [list(k) for k, jobs in self.queued.items() if jobs]

    def ready_after(self, namespace, queue, kind, after, limit):
        self.calls.append((namespace, queue, kind, after, limit))
        keys = sorted(self.queued.get((namespace, queue, kind), {}).values())
        if after is not None:
            keys = [k for k in keys if k[:2] > (after[0], after[1])]
        return [list(k) for k in keys[:limit]]  # rows, as a database cursor gives them

    def all_keys(self, kinds=None, namespace=None, queues=None):
        return sorted(v for (ns, q, kind), jobs in self.queued.items() for v in jobs.values()
                      if (kinds is None or kind in kinds) and (namespace is None or ns == namespace)
                      and (queues is None or q in queues))


class Broker:
    """What the lifecycle does around the dispatcher: store first, then tell it."""

    def __init__(self, size, store=None):
        self.store = store or FakeStore()
        self.dispatcher = Dispatcher(self.store, size)
        self.dispatcher.load()

    def submit(self, **kwargs):
        record = self.store.new(**kwargs)
        self.requeue(record)
        return record

    def requeue(self, record):
        self.store.enqueue(record)
        self.dispatcher.queued(record)

    def take(self, limit=1, **filters):
        items = self.dispatcher.take(limit=limit, **filters)
        for item in items:
            self.store.remove(item[2])  # Store.start: no longer queued
        return items

    def cancel(self, record):
        self.store.remove(record["id"])
        self.dispatcher.forget(record["id"])

    def drain(self, **filters):
        return self.take(limit=10**6, **filters)

    def window(self, kind="k", namespace="ns", queue="q"):
        return self.dispatcher.windows[(namespace, queue, kind)]


def key(record):
    return (record["priority"], record["rank"], record["id"])


def restarted(size, count, priority=0):
    """A broker started (``load``) over a store already holding ``count`` queued jobs."""
    store = FakeStore()
    records = [store.new(priority=priority) for _ in range(count)]
    for record in records:
        store.enqueue(record)
    return Broker(size, store), records


def test_priority_then_seq_across_windows():
    broker = Broker(size=100)
    rng = random.Random(7)
    records = [broker.submit(kind=rng.choice("abc"), queue=rng.choice(["q1", "q2"]), priority=rng.randint(-2, 2))
               for _ in range(60)]
    assert len(broker.dispatcher.windows) > 3
    assert broker.drain() == sorted(key(r) for r in records)
    assert broker.take() == [] and broker.store.calls == []


def test_take_one_at_a_time_gives_the_best_each_time():
    broker = Broker(size=10)
    low = broker.submit(kind="a", priority=5)
    high = broker.submit(kind="b", priority=-1)
    later = broker.submit(kind="a", priority=-1)
    assert [broker.take() for _ in range(4)] == [[key(high)], [key(later)], [key(low)], []]


def test_filters():
    broker = Broker(size=10)
    a = broker.submit(kind="a", namespace="n1", queue="q1")
    b = broker.submit(kind="b", namespace="n1", queue="q2")
    c = broker.submit(kind="a", namespace="n2", queue="q1")
    assert broker.take(kinds={"b"}, limit=5) == [key(b)]
    assert broker.take(kinds={"a"}, namespace="n2", limit=5) == [key(c)]
    assert broker.take(namespace="n1", queues={"q2"}) == []
    assert broker.take(queues={"q1"}, limit=5) == [key(a)]


def test_has_ready():
    dispatcher = Broker(size=10).dispatcher
    assert not dispatcher.has_ready()
    dispatcher.queued({"id": "j", "seq": 1, "rank": 1, "priority": 0, "namespace": "n1", "queue": "q", "kind": "a"})
    assert dispatcher.has_ready({"a"}) and dispatcher.has_ready(namespace="n1")
    assert not dispatcher.has_ready({"b"}) and not dispatcher.has_ready(namespace="n2")


def test_window_holds_at_most_twice_its_size_then_drops_its_highest():
    broker = Broker(size=4)
    records = [broker.submit() for _ in range(8)]
    assert len(broker.window()) == 8 and not broker.window().truncated
    records.append(broker.submit())
    window = broker.window()
    assert len(window) == 4 and window.truncated
    assert sorted(window.heap) == [key(r) for r in records[:4]] and window.highest == key(records[3])
    assert broker.drain() == [key(r) for r in records]
    assert broker.store.calls and broker.take() == []


def test_window_offer_returns_what_it_drops():
    window = Window(("ns", "q", "k"), 2)
    window.truncated = False
    assert [window.offer((0, s, f"j{s}")) for s in (4, 3, 2, 1)] == [[], [], [], []]
    assert window.offer((0, 5, "j5")) == [(0, 3, "j3"), (0, 4, "j4"), (0, 5, "j5")]
    assert window.offer((0, 9, "j9")) is None  # past `highest`: storage has it
    assert window.offer((-1, 7, "j7")) == []


def test_dropped_keys_come_back_in_order_without_duplicates():
    broker = Broker(size=4)
    records = [broker.submit(priority=p) for p in [3, 1, 2, 0, 3, 1, 2, 0, 1, 1, 0, 2, 3]]
    taken = broker.take(limit=2)
    records += [broker.submit(priority=p) for p in [0, 2, 1]]
    taken += broker.drain()
    assert taken == sorted(key(r) for r in records)


def test_forget_hides_a_key():
    broker = Broker(size=4)
    a, b, c = broker.submit(), broker.submit(), broker.submit()
    broker.cancel(b)
    assert broker.drain() == [key(a), key(c)]


def test_forget_at_the_head_of_a_truncated_window_refills():
    broker, records = restarted(4, 10)
    assert broker.take() == [key(records[0])]
    for r in records[1:4]:
        broker.cancel(r)
    assert broker.drain() == [key(r) for r in records[4:]]


def test_load_creates_truncated_windows_for_ready_queues():
    store = FakeStore()
    for kind in "ab":
        store.enqueue(store.new(kind=kind))
    store.new(kind="c")  # stored, not queued
    dispatcher = Dispatcher(store, 8)
    dispatcher.load()
    assert set(dispatcher.windows) == {("ns", "q", "a"), ("ns", "q", "b")}
    assert all(w.truncated and len(w) == 0 for w in dispatcher.windows.values())
    assert dispatcher.has_ready({"a"}) and store.calls == []


def test_truncated_window_refills_when_low_and_reads_in_pages():
    broker, records = restarted(8, 20)
    store, taken, sizes = broker.store, [], []
    while items := broker.take():
        taken += items
        sizes.append(len(broker.dispatcher.windows.get(("ns", "q", "k"), ())))
    assert taken == [key(r) for r in records]
    assert max(sizes) < 8 and store.calls[0] == ("ns", "q", "k", None, 8)
    assert [c[3:] for c in store.calls[1:]] == [(key(records[7]), 7), (key(records[14]), 7)]
    assert not broker.dispatcher.windows  # read to the end, then emptied: dropped


def test_offer_above_highest_while_truncated_is_left_in_storage():
    broker, records = restarted(4, 10, priority=1)
    assert broker.take() == [key(records[0])]
    window = broker.window()
    assert window.truncated and window.highest == key(records[3])
    late = broker.submit(priority=1)
    urgent = broker.submit(priority=0)
    assert key(late) not in window.heap and late["id"] not in broker.dispatcher.members
    assert key(urgent) in window.heap
    assert broker.drain() == [key(urgent)] + [key(r) for r in records[1:]] + [key(late)]


def check_invariants(dispatcher, store):
    """What the dispatcher promises between calls, checked against the fake storage."""
    holders = collections.Counter(map(id, dispatcher.members.values()))
    assert sum(map(len, dispatcher.by_kind.values())) == len(dispatcher.windows)
    for key, window in dispatcher.windows.items():
        assert dispatcher.by_kind[key[2]][key] is window
        assert window.truncated or window.live, "an emptied complete window is kept"
        assert window.live == holders[id(window)]
        assert len(window) <= 2 * window.size
        if not window.truncated:  # complete: holds every queued job of its key
            assert {i for _, _, i in window.heap if i in dispatcher.members} == set(store.queued.get(key, {}))
    for key, jobs in store.queued.items():
        assert not jobs or key in dispatcher.windows


@pytest.mark.parametrize("seed", range(12))
def test_random_operations_match_a_sorted_model(seed):
    rng = random.Random(seed)
    store = FakeStore()
    kinds, queues = ["a", "b", "c"], ["q1", "q2", "q3"]
    live, taken = [], {}

    def submit():
        live.append(broker.submit(kind=rng.choice(kinds), queue=rng.choice(queues), priority=rng.randint(0, 3)))

    broker = Broker(size=rng.randint(4, 8), store=store)
    for _ in range(rng.randint(0, 30)):
        submit()
    if rng.random() < 0.5:  # a broker restart: a fresh dispatcher loads from storage
        broker = Broker(size=rng.randint(4, 8), store=store)
    records = {r["id"]: r for r in live}
    for step in range(400):
        op = rng.random()
        filling = (step // 50) % 2 == 0  # alternate phases that grow and shrink the queues
        if op < (0.8 if filling else 0.2):
            submit()
            records[live[-1]["id"]] = live[-1]
        elif op < (0.9 if filling else 0.8):
            filters = {"kinds": set(rng.sample(kinds, rng.randint(1, 3))) if rng.random() < 0.5 else None,
                       "queues": {rng.choice(queues)} if rng.random() < 0.3 else None}
            limit = rng.randint(1, 6)
            expected = store.all_keys(**filters)[:limit]
            got = broker.take(limit=limit, **filters)
            assert got == expected
            taken.update((item[2], records[item[2]]) for item in got)
        elif op < 0.95 and taken:  # a failed attempt retried at once
            broker.requeue(taken.pop(rng.choice(sorted(taken))))
        elif live:
            record = live.pop(rng.randrange(len(live)))
            taken.pop(record["id"], None)
            broker.cancel(record)
        check_invariants(broker.dispatcher, store)
    left = store.all_keys()
    assert broker.drain() == left  # nothing lost, no duplicates
    assert broker.take() == [] and not broker.dispatcher.members
    assert not broker.dispatcher.windows and not broker.dispatcher.by_kind


# -- windows of emptied queues ----------------------------------------------------------------

def test_a_window_is_dropped_when_its_queue_empties_and_made_again_complete():
    broker = Broker(size=4)
    first = broker.submit(queue="a")
    assert broker.take() == [key(first)]
    assert not broker.dispatcher.windows and not broker.dispatcher.by_kind
    again = broker.submit(queue="a")
    assert not broker.window(queue="a").truncated
    assert broker.take() == [key(again)] and broker.store.calls == []


def test_cancelling_the_last_queued_job_drops_the_window():
    broker = Broker(size=4)
    a, b = broker.submit(kind="external"), broker.submit(kind="external")
    broker.cancel(a)
    assert broker.window(kind="external").live == 1
    broker.cancel(b)
    assert not broker.dispatcher.windows and not broker.dispatcher.has_ready({"external"})


def test_a_truncated_window_that_refills_to_nothing_is_dropped():
    broker, records = restarted(4, 6)
    for record in records:
        broker.cancel(record)
    assert broker.dispatcher.has_ready()  # storage not read yet
    assert broker.take() == [] and not broker.dispatcher.windows
    assert not broker.dispatcher.has_ready()


def test_many_emptied_queues_leave_no_windows():
    broker = Broker(size=8)
    for n in range(1000):
        broker.submit(queue=f"q{n}", kind=f"k{n % 3}")
    assert len(broker.dispatcher.windows) == 1000
    assert len(broker.take(kinds={"k0", "k1", "k2"}, limit=400)) == 400
    assert len(broker.drain()) == 600
    assert not broker.dispatcher.windows and not broker.dispatcher.by_kind and not broker.dispatcher.members


def test_take_and_has_ready_look_only_at_the_kinds_asked():
    broker = Broker(size=8)
    wanted = broker.submit(kind="a", queue="q")
    for n in range(50):
        broker.submit(kind="b", queue=f"q{n}")
    assert broker.dispatcher.has_ready({"a"}) and not broker.dispatcher.has_ready({"c"})
    assert broker.take(kinds={"a", "c"}, limit=10) == [key(wanted)]
    assert not broker.dispatcher.has_ready({"a"}) and set(broker.dispatcher.by_kind) == {"b"}


def test_before_load_a_queued_job_makes_a_truncated_window():
    """At start a re-queued job may come before ``load``: its queue's other jobs must still be read."""
    store = FakeStore()
    waiting = [store.new() for _ in range(5)]
    for record in waiting:
        store.enqueue(record)
    dispatcher = Dispatcher(store, 8)
    held = store.new()  # leased before the restart, given back before load() ran
    store.enqueue(held)
    dispatcher.queued(held)
    assert dispatcher.windows[("ns", "q", "k")].truncated
    dispatcher.load()
    assert dispatcher.take(limit=10) == [key(r) for r in waiting + [held]]


# -- bugs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [1, 3])
def test_small_windows_read_from_storage(size):
    broker, records = restarted(size, 1)
    assert broker.take() == [key(records[0])]


@pytest.mark.parametrize("taken", [4, 1])
def test_requeue_of_the_highest_key_is_not_lost(taken):
    broker, records = restarted(4, 8)
    assert broker.take(limit=taken) == [key(r) for r in records[:taken]]
    if taken < 4:
        broker.cancel(records[3])  # then the RETRY command re-queues it
    broker.requeue(records[3])  # taken: its attempt failed, retried without backoff delay
    assert broker.drain() == [key(r) for r in records[min(taken, 3):]]  # job 3 back in its place


def test_retried_key_split_by_an_overflow_is_not_lost():
    broker = Broker(size=4)
    records = [broker.submit() for _ in range(4)]
    broker.cancel(records[3])
    broker.requeue(records[3])
    records += [broker.submit() for _ in range(4)]
    assert broker.drain() == [key(r) for r in records]



def test_lifo_jobs_go_first_newest_first_within_their_priority_even_through_small_windows():
    broker = Broker(size=2)  # most keys stay in storage and come back through refills
    made = [broker.submit(), broker.submit(), broker.submit(lifo=True), broker.submit(lifo=True),
            broker.submit(priority=-1), broker.submit(priority=1, lifo=True), broker.submit(lifo=True)]
    order = [item[2] for item in broker.drain()]
    assert order == [made[i]["id"] for i in (4, 6, 3, 2, 0, 1, 5)]
