"""List queries answered by storage, checked against a plain-Python oracle, on every backend.

Seeded generators make jobs (queues, names, labels, states, times) and queries
(multi-value filters, every selector operator, time ranges, each order, offsets);
what storage returns, page by page, must be exactly what the oracle says.
"""
import random

import pytest

from tubeway.broker.job_filters import parse_filter
from tubeway.broker.store.queries import Store
from tubeway.core.job import normalize_spec
from tubeway.core.selectors import parse_selector

pytestmark = pytest.mark.integration
NOW = 1_000_000.0
KEYS, VALUES = ("env", "tier", "team"), ("a", "b", "c")
STATES = ("queued", "running", "done", "failed")


def make_jobs(store, rng, count):
    specs = []
    for _ in range(count):
        labels = {key: rng.choice(VALUES) for key in KEYS if rng.random() < 0.6}
        specs.append(normalize_spec({"kind": "noop", "queue": rng.choice(("q1", "q2", "q3")), "labels": labels,
                                     "name": rng.choice((None, "n1", "n2"))}, now=NOW))
    with store.atomic():
        records = store.insert(specs, NOW)
        for index, record in enumerate(records):
            record["state"] = rng.choice(STATES)
            record["updated_at"] = NOW + rng.randrange(20)
            record["created_at"] = NOW + index // 10
            store.update(record["seq"], state=record["state"], updated_at=record["updated_at"],
                         created_at=record["created_at"])
    return records


def holds(record, requirement):
    value = record["labels"].get(requirement["key"])
    op, values = requirement["op"], requirement["values"]
    return {"=": value in values, "in": value in values, "!=": value not in values, "notin": value not in values,
            "exists": value is not None, "!exists": value is None}[op]


def oracle(records, body):
    found = [r for r in records
             if (not body.get("queues") or r["queue"] in body["queues"])
             and (not body.get("states") or r["state"] in body["states"])
             and (not body.get("names") or r["name"] in body["names"])
             and (not body.get("sequences") or r["sequence"] in body["sequences"])
             and all(holds(r, q) for q in body.get("selector") or ())
             and all(any(all({"gte": r[c] >= v, "gt": r[c] > v, "lte": r[c] <= v, "lt": r[c] < v}[op]
                                 for op, v in bounds.items()) for bounds in body[c])
                     for c in ("created_at", "updated_at") if c in body)]
    order = body.get("order", "created")
    if order.endswith("updated"):
        found.sort(key=lambda r: (r["updated_at"], r["seq"]), reverse=order.startswith("-"))
    else:
        found.sort(key=lambda r: r["seq"], reverse=order.startswith("-"))
    return [r["id"] for r in found]


def random_query(rng):
    body = {}
    if rng.random() < 0.4:
        body["queues"] = rng.sample(("q1", "q2", "q3", "q4"), rng.randint(1, 2))
    if rng.random() < 0.4:
        body["states"] = rng.sample(STATES, rng.randint(1, 3))
    if rng.random() < 0.2:
        body["names"] = rng.sample(("n1", "n2", "n3"), rng.randint(1, 2))
    if rng.random() < 0.2:
        body["sequences"] = rng.sample(range(1, 60), 8)
    text = ",".join(rng.choice((
        lambda k, v: f"{k}={v}", lambda k, v: f"{k}=={v}", lambda k, v: f"{k}!={v}",
        lambda k, v: f"{k} in ({v},c)", lambda k, v: f"{k} notin ({v})", lambda k, v: k, lambda k, v: f"!{k}",
    ))(rng.choice(KEYS), rng.choice(VALUES)) for _ in range(rng.randint(0, 3)))
    if text:
        body["selector"] = parse_selector(text)
    if rng.random() < 0.3:
        body["updated_at"] = [{"gte": NOW + rng.randrange(10), "lt": NOW + rng.randrange(5, 20)},
                              {"gt": NOW + 17}]
    if rng.random() < 0.2:
        body["created_at"] = [{"lte": NOW + rng.randrange(8)}]
    body["order"] = rng.choice(("created", "-created", "updated", "-updated"))
    return body


def walk_pages(store, body, per_page):
    ids, offset, total = [], 0, None
    while True:
        query = parse_filter(dict(body, limit=per_page, offset=offset, total=True))
        records, total = store.query(query, now=NOW)
        ids.extend(r["id"] for r in records)
        offset += per_page
        if len(records) < per_page:
            return ids, total


def test_every_filter_selector_order_and_page_matches_the_oracle(db):
    store, rng = Store(db), random.Random(20261204)
    records = make_jobs(store, rng, 120)
    for _ in range(150):
        body = random_query(rng)
        expected = oracle(records, body)
        ids, total = walk_pages(store, body, rng.choice((1, 7, 50, 500)))
        assert (ids, total) == (expected, len(expected)), body


def test_each_queue_numbers_its_jobs_from_one_and_never_reuses_a_number(db):
    store = Store(db)
    first = make_jobs(store, random.Random(1), 30)
    by_queue = {}
    for record in first:
        by_queue.setdefault(record["queue"], []).append(record["sequence"])
    assert all(numbers == list(range(1, len(numbers) + 1)) for numbers in by_queue.values())
    last = first[-1]
    with store.atomic():
        store.delete(last["seq"])
    again = Store(db)  # as after a broker restart: the numbers come from storage
    with again.atomic():
        [record] = again.insert([normalize_spec({"kind": "noop", "queue": last["queue"]}, now=NOW)], NOW)
    assert record["sequence"] == len(by_queue[last["queue"]]) + 1
    with again.atomic():
        two = again.insert([normalize_spec({"kind": "noop", "queue": "fresh"}, now=NOW)] * 2, NOW)
    assert [r["sequence"] for r in two] == [1, 2]


def test_metadata_changes_are_merged_removed_and_found_by_selectors(db):
    store = Store(db)
    with store.atomic():
        [record] = store.insert([normalize_spec({"kind": "noop", "labels": {"env": "a", "old": "x"},
                                                 "annotations": {"note": "hi"}}, now=NOW)], NOW)
    with store.atomic():
        store.set_metadata(record, {"env": "b", "old": None, "new": "y"}, {"note": None, "why": "z"}, NOW + 5)
    got = store.get(record["id"])
    assert got["labels"] == {"env": "b", "new": "y"} and got["annotations"] == {"why": "z"}
    assert got["updated_at"] == NOW + 5

    def found(text):
        return [r["id"] for r in store.query(parse_filter({"selector": parse_selector(text)}))[0]]
    assert found("env=b,new") == [record["id"]]
    assert found("old") == [] and found("env=a") == [] and found("!old") == [record["id"]]


def test_a_priority_range_splits_a_queue_as_bullmq_splits_waiting_from_prioritized(db):
    store = Store(db)
    with store.atomic():
        records = store.insert([normalize_spec({"kind": "noop", "priority": p}, now=NOW) for p in (0, 5, 0, 1)], NOW)

    def found(ranges):
        return [r["id"] for r in store.query(parse_filter({"priority": ranges}))[0]]
    assert found([{"gte": 1}]) == [records[1]["id"], records[3]["id"]]
    assert found([{"lte": 0}]) == [records[0]["id"], records[2]["id"]]


def test_the_dispatch_order_lists_queued_jobs_as_workers_get_them(db):
    store = Store(db)
    with store.atomic():
        records = store.insert([normalize_spec({"kind": "noop", "priority": p, "lifo": lifo}, now=NOW)
                                for p, lifo in ((2, False), (1, False), (2, True), (1, True))], NOW)
    listed = [r["id"] for r in store.query(parse_filter({"order": "dispatch"}))[0]]
    assert listed == [records[i]["id"] for i in (3, 1, 2, 0)]
