"""The storage contract, run against every backend (real SQLite file, real PostgreSQL)."""
import pytest

from tubeway.broker.store.models import open_database
from tubeway.broker.store.queries import TIMER_INDEXES, Store, count_jobs
from tubeway.core.job import normalize_spec

pytestmark = pytest.mark.integration
NOW = 1_000_000.0


def spec(**fields):
    fields.setdefault("kind", "noop")
    return normalize_spec(fields, now=NOW)


@pytest.fixture
def store(db):
    return Store(db)


def insert(store, *specs):
    with store.atomic():
        return store.insert(list(specs), NOW)


def test_insert_then_get_returns_the_record(store):
    [record] = insert(store, spec(payload={"a": [1, 2]}, labels={"team": "x"}, queue="q"))
    got = store.get(record["id"])
    assert got["payload"] == {"a": [1, 2]}
    assert got["labels"] == {"team": "x"}
    assert got["state"] == "queued" and got["queue"] == "q" and got["attempts"] == 0
    assert store.get("no-such-id") is None


def test_delayed_jobs_are_stored_delayed_and_fire_from_the_index(store):
    [late] = insert(store, spec(run_at=NOW + 50))
    [soon] = insert(store, spec(run_at=NOW + 10))
    assert late["state"] == "delayed"
    assert store.next_due("delayed") == NOW + 10
    assert [r["id"] for r in store.due("delayed", NOW + 20)] == [soon["id"]]


def test_ready_after_orders_by_priority_then_age_and_pages_by_key(store):
    records = insert(store, spec(priority=5), spec(priority=1), spec(priority=5), spec(priority=0))
    keys = store.ready_after("default", "default", "noop", None, 10)
    assert [k[2] for k in keys] == [records[i]["id"] for i in (3, 1, 0, 2)]
    assert [k[2] for k in store.ready_after("default", "default", "noop", tuple(keys[1]), 10)] == \
        [records[0]["id"], records[2]["id"]]


def test_start_counts_an_attempt_and_marks_running(store):
    records = insert(store, spec(), spec())
    with store.atomic():
        started = store.start([r["seq"] for r in records], "w1", NOW + 1, lease_until=NOW + 31)
    assert {r["state"] for r in started} == {"running"}
    got = store.get(records[0]["id"])
    assert got["attempts"] == 1 and got["worker"] == "w1" and got["lease_until"] == NOW + 31
    assert store.next_due("lease") == NOW + 31
    assert store.ready_after("default", "default", "noop", None, 10) == []


def test_start_returns_records_in_the_order_asked_whether_cached_or_read(store):
    records = insert(store, spec(payload=0), spec(payload=1), spec(payload=2))
    with store.atomic():
        store.update(records[0]["seq"], priority=0)  # a changed record leaves the cache: it is read back
    order = [records[2]["seq"], records[0]["seq"], records[1]["seq"]]
    with store.atomic():
        started = store.start(order, "w1", NOW + 1)
    assert [r["payload"] for r in started] == [2, 0, 1]


def test_updates_are_written_in_order_within_a_transaction(store):
    [record] = insert(store, spec())
    with store.atomic():
        store.update(record["seq"], state="running", worker="w")
        store.update(record["seq"], state="done", result={"ok": True}, worker=None)
    got = store.get(record["id"])
    assert got["state"] == "done" and got["result"] == {"ok": True} and got["worker"] is None


def test_a_failed_transaction_leaves_nothing_behind(store):
    with pytest.raises(RuntimeError):
        with store.atomic():
            store.insert([spec()], NOW)
            raise RuntimeError("boom")
    assert store.list() == []


def test_a_savepoint_that_rolls_back_keeps_the_rest_of_its_transaction(store):
    with store.atomic():
        [kept] = store.insert([spec(queue="q")], NOW)
        with pytest.raises(RuntimeError):
            with store.atomic():
                store.insert([spec(queue="q")], NOW)
                store.update(kept["seq"], priority=5)
                raise RuntimeError("boom")
        with store.atomic():
            [after] = store.insert([spec(queue="q")], NOW)
    assert [r["id"] for r in store.list()] == [kept["id"], after["id"]]
    assert store.get(kept["id"])["priority"] == 0
    assert (kept["sequence"], after["sequence"]) == (1, 3)  # the number given in the rolled back savepoint is skipped


def test_queue_numbers_survive_a_new_store_and_a_failed_transaction(db, store):
    insert(store, spec(queue="q"), spec(queue="q"))
    with pytest.raises(RuntimeError):
        with store.atomic():
            store.insert([spec(queue="q")], NOW)
            raise RuntimeError("boom")
    [next_here] = insert(store, spec(queue="q"))
    [next_anew] = insert(Store(db), spec(queue="q"))
    assert (next_here["sequence"], next_anew["sequence"]) == (3, 4)


def test_list_filters_by_state_and_labels_with_a_keyset_cursor(store):
    records = insert(store, *[spec(labels={"team": "a" if i % 2 else "b", "env": "prod"}) for i in range(6)])
    page = store.list(labels={"team": "a", "env": "prod"}, limit=2)
    assert [r["id"] for r in page] == [records[1]["id"], records[3]["id"]]
    rest = store.list(labels={"team": "a"}, limit=2, after=page[-1]["seq"])
    assert [r["id"] for r in rest] == [records[5]["id"]]
    assert store.list(state="done") == []


def test_list_filters_by_kind(store):
    records = insert(store, spec(kind="echo"), spec(kind="noop"), spec(kind="echo"))
    assert [r["id"] for r in store.list(kind="echo")] == [records[0]["id"], records[2]["id"]]
    assert store.list(kind="fraction") == []


def test_counts_group_by_queue_and_state(store):
    insert(store, spec(queue="a"), spec(queue="a"), spec(queue="b", run_at=NOW + 5))
    assert sorted(count_jobs()) == [("default", "a", "queued", 2), ("default", "b", "delayed", 1)]


def test_unique_keys_are_found_per_namespace(store):
    [record] = insert(store, spec(unique_key="k1"))
    assert store.existing_unique("default", {"k1", "k2"}) == {"k1": record["id"]}
    assert store.existing_unique("other", {"k1"}) == {}


def test_expired_results_are_hidden_then_purged(store):
    [record] = insert(store, spec())
    with store.atomic():
        store.update(record["seq"], state="done", expires_at=NOW + 5)
    assert store.get(record["id"], now=NOW + 1) is not None
    assert store.get(record["id"], now=NOW + 6) is None
    assert store.next_due("expiry") == NOW + 5
    with store.atomic():
        assert store.purge_expired(NOW + 6) == 1
    assert store.get(record["id"]) is None


def test_running_on_workers_excludes_http_takers(store):
    records = insert(store, spec(), spec(kind="external"))
    with store.atomic():
        store.start([records[0]["seq"]], "w1", NOW)
        store.start([records[1]["seq"]], "http", NOW, lease_until=NOW + 5)
    assert [r["id"] for r in store.running_on_workers()] == [records[0]["id"]]


def test_a_new_store_numbers_jobs_after_the_existing_ones(db, store):
    first = insert(store, spec(), spec())
    again = Store(db)
    with again.atomic():
        [record] = again.insert([spec()], NOW)
    assert record["seq"] > max(r["seq"] for r in first)


def test_delete_removes_job_and_labels(store):
    [record] = insert(store, spec(labels={"a": "b"}))
    with store.atomic():
        store.delete(record["seq"])
    assert store.get(record["id"]) is None
    assert store.list(labels={"a": "b"}) == []


def test_pending_updates_are_written_before_a_later_statement(store):
    [record] = insert(store, spec())
    with store.atomic():
        store.update(record["seq"], state="queued", worker=None)
        store.start([record["seq"]], "w2", NOW)
    assert store.get(record["id"])["worker"] == "w2"


def test_opening_a_database_of_an_older_version_adds_the_new_columns(db_url, db):
    # A database created before the origin column existed: drop it (and its index) as if it never had it.
    db.execute_sql('DROP INDEX "job_origin"')
    db.execute_sql('ALTER TABLE "tubeway_job" DROP COLUMN "origin"')
    assert "origin" not in {column.name for column in db.get_columns("tubeway_job")}
    db.close()
    reopened = open_database(db_url)
    assert "origin" in {column.name for column in reopened.get_columns("tubeway_job")}
    [record] = insert(Store(reopened), spec(kind="echo"))
    assert Store(reopened).get(record["id"])["origin"] is None
    reopened.close()


def test_a_schedule_table_without_id_label_gets_it(db_url, db):
    db.execute_sql('ALTER TABLE "tubeway_schedule" DROP COLUMN "id_label"')
    db.close()
    reopened = open_database(db_url)
    assert "id_label" in {column.name for column in reopened.get_columns("tubeway_schedule")}
    reopened.close()


def test_ready_after_puts_lifo_jobs_first_newest_first_within_a_priority(store):
    records = insert(store, spec(), spec(lifo=True), spec(), spec(lifo=True), spec(priority=-1))
    keys = store.ready_after("default", "default", "noop", None, 10)
    assert [k[2] for k in keys] == [records[i]["id"] for i in (4, 3, 1, 0, 2)]
    assert [k[2] for k in store.ready_after("default", "default", "noop", tuple(keys[1]), 10)] == \
        [records[i]["id"] for i in (1, 0, 2)]
    assert store.get(records[1]["id"])["lifo"] is True and store.get(records[0]["id"])["lifo"] is False


def test_every_timer_reads_only_its_partial_index(db_url, store):
    """Firing a timer must not walk every row of a state (SQLite chose job_ready_rank and sorted)."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the plan checked is SQLite's; PostgreSQL picks partial indexes from the literal conditions")
    for timer, (column, condition, index) in TIMER_INDEXES.items():
        next_sql, due_sql = store._timer_sql[timer]
        for sql, params in ((next_sql, ()), (due_sql, (NOW, 10))):
            plan = " ".join(row[-1] for row in store.db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())
            assert f"INDEX {index}" in plan and "TEMP B-TREE" not in plan, (timer, plan)
