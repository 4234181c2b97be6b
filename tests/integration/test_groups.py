"""Jobs that spawn children and wait for them, through the broker over real sockets."""
import pytest

from tubeway.core import protocol as p
from tubeway.core.client import BrokerClient
from tubeway.core.job import normalize_spec
from brokerkit import BrokerThread, ScriptedWorker, poll_until

pytestmark = pytest.mark.integration


def spec(**fields):
    fields.setdefault("kind", "echo")
    return normalize_spec(fields)


def finish(worker, job, **result):
    worker.send(p.RESULTS, {"results": [{"id": job["id"], "attempt": job["attempts"], "state": "done", **result}]})


@pytest.fixture
def broker(db_url):
    running = BrokerThread(db_url, worker_liveness_seconds=30).start()
    try:
        yield running
    finally:
        running.stop()


def spawn_three(client, worker):
    [parent_id] = client.submit([spec(payload="parent")])["ids"]
    parent = worker.jobs()[0]
    children = [spec(payload=i, parent=parent_id) for i in range(3)]
    finish(worker, parent, result="mine", spawn=children, **{"await": 3})
    return parent_id, worker.jobs(3)


def test_a_parent_waits_for_its_children_and_shows_progress(broker):
    with BrokerClient(broker.endpoint, timeout=5) as client:
        worker = ScriptedWorker(broker.endpoint)
        parent_id, children = spawn_three(client, worker)
        waiting = client.get(parent_id)
        assert waiting["state"] == "running" and waiting["worker"] is None
        assert waiting["progress"] == {"done": 0, "failed": 0, "total": 3}
        for child in children[:2]:
            finish(worker, child, result=child["payload"])
        poll_until(lambda: client.get(parent_id)["progress"]["done"] == 2)
        assert client.get(parent_id)["state"] == "running"
        finish(worker, children[2])
        done = poll_until(lambda: _ended(client, parent_id))
        assert done["state"] == "done" and done["result"] == "mine"
        assert done["progress"] == {"done": 3, "failed": 0, "total": 3}
        worker.close()


def test_one_failed_child_fails_the_parent_and_the_rest_still_count(broker):
    with BrokerClient(broker.endpoint, timeout=5) as client:
        worker = ScriptedWorker(broker.endpoint)
        parent_id, children = spawn_three(client, worker)
        worker.send(p.RESULTS, {"results": [{"id": children[0]["id"], "attempt": 1, "state": "failed",
                                             "error": "boom"}]})
        failed = poll_until(lambda: _ended(client, parent_id))
        assert failed["state"] == "failed" and "1 of 3" in failed["error"]
        finish(worker, children[1])
        finish(worker, children[2])
        poll_until(lambda: client.get(parent_id)["progress"] == {"done": 2, "failed": 1, "total": 3})
        assert client.get(parent_id)["state"] == "failed"
        worker.close()


def test_a_waiting_parent_survives_a_broker_restart(db_url):
    first = BrokerThread(db_url, worker_liveness_seconds=30).start()
    try:
        with BrokerClient(first.endpoint, timeout=5) as client:
            worker = ScriptedWorker(first.endpoint)
            parent_id, children = spawn_three(client, worker)
            finish(worker, children[0])
            poll_until(lambda: client.get(parent_id)["progress"]["done"] == 1)
            worker.close()
    finally:
        first.stop()
    again = BrokerThread(db_url, broker=first.endpoint, worker_liveness_seconds=30).start()
    try:
        with BrokerClient(again.endpoint, timeout=5) as client:
            assert client.get(parent_id)["state"] == "running"
            worker = ScriptedWorker(again.endpoint)
            for child in worker.jobs(2):
                finish(worker, child)
            done = poll_until(lambda: _ended(client, parent_id))
            assert done["state"] == "done" and done["progress"]["done"] == 3
            worker.close()
    finally:
        again.stop()


def test_spawned_jobs_are_stored_with_the_result(broker):
    with BrokerClient(broker.endpoint, timeout=5) as client:
        worker = ScriptedWorker(broker.endpoint)
        [job_id] = client.submit([spec()])["ids"]
        finish(worker, worker.jobs()[0], spawn=[spec(queue="next", payload="a")])
        poll_until(lambda: client.list_jobs(queue="next")["jobs"])
        assert client.get(job_id)["state"] == "done"
        worker.close()


def test_cancelling_a_parent_cancels_its_whole_spawn_tree_and_stops_it_on_workers(broker):
    with BrokerClient(broker.endpoint, timeout=5) as client:
        worker = ScriptedWorker(broker.endpoint)
        parent_id, children = spawn_three(client, worker)
        # The first child runs and spawns a grandchild (no parent link: it belongs by origin).
        finish(worker, children[0], spawn=[spec(payload="grandchild", queue="deeper")])
        [grandchild] = worker.jobs()
        assert grandchild["origin"] == parent_id and children[1]["origin"] == parent_id
        finish(worker, children[1], result="kept")
        poll_until(lambda: client.get(parent_id)["progress"]["done"] == 2)

        assert client.cancel(parent_id)["state"] == "cancelled"
        assert worker.aborted(2) == sorted([children[2]["id"], grandchild["id"]])
        states = {job_id: client.get(job_id)["state"] for job_id in
                  (children[0]["id"], children[1]["id"], children[2]["id"], grandchild["id"])}
        assert states == {children[0]["id"]: "done", children[1]["id"]: "done",
                          children[2]["id"]: "cancelled", grandchild["id"]: "cancelled"}
        assert client.get(grandchild["id"])["error"] == f"cancelled with job {parent_id}"
        finish(worker, children[2], result="too late")  # ignored: its lease is gone
        assert client.get(parent_id)["progress"] == {"done": 2, "failed": 0, "total": 3}
        worker.close()


def test_deleting_a_parent_cancels_what_it_waits_for(broker):
    with BrokerClient(broker.endpoint, timeout=5) as client:
        worker = ScriptedWorker(broker.endpoint)
        parent_id, children = spawn_three(client, worker)
        client.delete(parent_id)
        assert worker.aborted(3) == sorted(child["id"] for child in children)
        assert {client.get(child["id"])["state"] for child in children} == {"cancelled"}
        worker.close()


def _ended(client, job_id):
    job = client.get(job_id)
    return job if job["state"] in ("done", "failed", "cancelled") else None
