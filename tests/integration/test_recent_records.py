"""The store's cache of records inserted lately: bounded by count and by size, never stale.

Run on a real SQLite file, with the cache's limits made small so the bounds are
reached cheaply.
"""
import pytest

from tubeway.broker.store import queries
from tubeway.broker.store.models import open_database
from tubeway.core.job import normalize_spec

pytestmark = pytest.mark.integration
NOW = 1_000_000.0
KIB = 1024


@pytest.fixture
def store(tmp_path):
    db = open_database(f"sqlite:///{tmp_path}/tubeway.db")
    try:
        yield queries.Store(db)
    finally:
        db.close()


def insert(store, count, payload=None):
    with store.atomic():
        return store.insert([normalize_spec({"kind": "noop", "payload": payload}) for _ in range(count)], NOW)


def start(store, records):
    with store.atomic():
        return store.start([r["seq"] for r in records], "w1", NOW + 1)


def test_large_payloads_are_bounded_by_size(store, monkeypatch):
    monkeypatch.setattr(queries, "RECENT_BYTES", 1024 * KIB)
    big = "x" * (64 * KIB)
    records = insert(store, 8, big) + insert(store, 40, big)
    cached = list(store._recent)
    assert 0 < len(cached) <= 1024 // 64  # 64 KiB each, plus a little
    assert cached == [r["seq"] for r in records[-len(cached):]]  # the newest stay
    started = start(store, records)  # the cached and the evicted read back alike
    assert sorted((r["seq"], r["state"], r["attempts"], r["payload"]) for r in started) == \
        [(r["seq"], "running", 1, big) for r in records]


def test_small_records_are_bounded_by_count(store, monkeypatch):
    monkeypatch.setattr(queries, "RECENT_LIMIT", 10)
    records = insert(store, 25)
    assert list(store._recent) == [r["seq"] for r in records[-10:]]


def test_a_record_larger_than_the_whole_cache_is_not_kept(store, monkeypatch):
    monkeypatch.setattr(queries, "RECENT_BYTES", 64 * KIB)
    [small] = insert(store, 1)
    [huge] = insert(store, 1, "y" * (128 * KIB))
    assert small["seq"] not in store._recent and huge["seq"] not in store._recent
    [again] = start(store, [huge])
    assert again["payload"] == huge["payload"]


def test_room_comes_back_as_records_leave_the_cache(store, monkeypatch):
    monkeypatch.setattr(queries, "RECENT_BYTES", 1024 * KIB)
    for _ in range(5):  # started, updated and deleted records give their room back
        records = insert(store, 12, "z" * (64 * KIB))
        assert len(store._recent) == 12
        start(store, records[:4])
        with store.atomic():
            for record in records[4:8]:
                store.update(record["seq"], state="cancelled")
            for record in records[8:]:
                store.delete(record["seq"])
        assert not store._recent
