"""Regressions of the hardening issue, over real sockets: nothing strands a job, nothing kills the broker."""
import pytest

from tubeway.core import protocol as p
from tubeway.core.client import BrokerClient
from tubeway.core.errors import JobNotFound, ValidationError
from brokerkit import BrokerThread, ScriptedWorker, job, poll_until, state_of

pytestmark = pytest.mark.integration


def test_a_restart_with_jobs_running_strands_none_of_their_queue(db_url):
    broker = BrokerThread(db_url, ready_window=8).start()
    try:
        with BrokerClient(broker.endpoint, timeout=5) as client:
            ids = client.submit([job(queue="busy", payload=i) for i in range(40)])["ids"]
            taker = ScriptedWorker(broker.endpoint, credit=2)
            assert len(taker.jobs(2)) == 2  # two run, 38 wait; then the broker dies
            taker.close()
    finally:
        broker.stop()
    again = BrokerThread(db_url, broker=broker.endpoint, ready_window=8).start()
    try:
        assert again.recovered == 2
        worker = ScriptedWorker(again.endpoint, credit=100)
        for got in worker.jobs(40):
            worker.finish(got, result=got["payload"])
        with BrokerClient(again.endpoint, timeout=5) as client:
            poll_until(lambda: all(state_of(client, i) == "done" for i in ids), what="every job done")
        worker.close()
    finally:
        again.stop()


@pytest.mark.parametrize("body", [
    {"kinds": ["echo"], "credit": "x"}, {"kinds": "echo"}, {"credit": 3}, {"kinds": ["echo"], "credit": 10**30 % 2**64},
    [1, 2], "ready",
])
def test_a_malformed_ready_is_dropped_and_the_broker_serves_on(running, client, body):
    rogue = ScriptedWorker.__new__(ScriptedWorker)
    ScriptedWorker.__init__(rogue, running.endpoint, credit=1)
    rogue.send(p.READY, body)
    [job_id] = client.submit([job(payload="fine")])["ids"]
    worker = ScriptedWorker(running.endpoint)
    got = worker.jobs(1)[0]
    worker.finish(got, result=got["payload"])
    poll_until(lambda: state_of(client, job_id) == "done")
    assert client.health()["workers"] >= 1
    rogue.close()
    worker.close()


def test_worker_commands_from_a_peer_that_never_sent_ready_change_nothing(running, client):
    [job_id] = client.submit([job()])["ids"]
    worker = ScriptedWorker(running.endpoint)
    got = worker.jobs(1)[0]
    stranger = ScriptedWorker.__new__(ScriptedWorker)
    stranger.aborted_ids, stranger.pending_jobs = [], []
    import zmq
    stranger.socket = zmq.Context.instance().socket(zmq.DEALER)
    stranger.socket.setsockopt(zmq.LINGER, 0)
    stranger.socket.connect(running.endpoint)
    stranger.finish(got, result="forged")  # a result for a lease it does not hold
    stranger.send(p.HEARTBEAT, {"held": [], "seen": 99})
    assert client.get(job_id)["state"] == "running"
    worker.finish(got, result="real")
    poll_until(lambda: state_of(client, job_id) == "done")
    assert client.get(job_id)["result"] == "real"
    stranger.close()
    worker.close()


def test_a_lost_result_does_not_leave_the_job_running_forever(running, client):
    [job_id] = client.submit([job(payload="again", attempts=2, backoff=0)])["ids"]
    worker = ScriptedWorker(running.endpoint, credit=1)
    first = worker.jobs(1)[0]
    worker.send(p.RESULTS, {"results": [], "started": [first["id"]]})
    # The worker finished the job but its RESULTS message was lost; its heartbeat says it holds nothing.
    worker.send(p.HEARTBEAT, {"held": [], "seen": 1})
    second = worker.jobs(1)[0]
    assert second["id"] == job_id and second["attempts"] == 2
    worker.finish(second, result="at last")
    poll_until(lambda: state_of(client, job_id) == "done")
    worker.close()


def test_a_heartbeat_before_the_jobs_arrived_takes_nothing_back(running, client):
    worker = ScriptedWorker(running.endpoint, credit=1)
    [job_id] = client.submit([job()])["ids"]
    got = worker.jobs(1)[0]
    worker.send(p.HEARTBEAT, {"held": [], "seen": 0})  # sent before JOBS message 1 was read
    worker.finish(got, result="ok")
    poll_until(lambda: state_of(client, job_id) == "done")
    assert client.get(job_id)["attempts"] == 1
    worker.close()


@pytest.mark.parametrize("result", [
    {"state": "done", "result": {1: "int key"}},
    {"state": "done", "spawn": [{"kind": ""}]},
    {"state": "done", "spawn": ["not a spec"]},
    {"state": "done", "progress": b"bytes"},
])
def test_a_result_storage_cannot_hold_fails_the_job_and_nothing_else(running, client, result):
    [job_id] = client.submit([job(attempts=3)])["ids"]
    worker = ScriptedWorker(running.endpoint)
    got = worker.jobs(1)[0]
    worker.send(p.RESULTS, {"results": [{"id": got["id"], "attempt": got["attempts"], **result}]})
    poll_until(lambda: state_of(client, job_id) == "failed")
    assert client.get(job_id)["error"].startswith("refused result")
    assert client.list_jobs(namespace="default")["jobs"][-1]["id"] == job_id  # nothing spawned
    worker.close()


def test_a_child_that_ends_before_its_parent_waits_is_counted(running, client):
    worker = ScriptedWorker(running.endpoint, credit=5)
    [parent_id] = client.submit([job()])["ids"]
    parent = worker.jobs(1)[0]
    [child_id] = client.submit([job(parent=parent_id)])["ids"]
    child = worker.jobs(1)[0]
    worker.finish(child, result="early")
    poll_until(lambda: state_of(client, child_id) == "done")
    worker.send(p.RESULTS, {"results": [{"id": parent["id"], "attempt": 1, "state": "done", "await": 1}]})
    poll_until(lambda: state_of(client, parent_id) == "done", what="the parent counted its early child")
    assert client.get(parent_id)["progress"] == {"done": 1, "failed": 0, "total": 1}
    worker.close()


def test_a_spawned_job_that_fails_for_good_fails_the_parent_waiting_on_its_tree(running, client):
    worker = ScriptedWorker(running.endpoint, credit=5)
    [root_id] = client.submit([job()])["ids"]
    root = worker.jobs(1)[0]
    step = {"kind": "echo", "payload": "a split step", "attempts": 1}
    worker.send(p.RESULTS, {"results": [{"id": root["id"], "attempt": 1, "state": "done", "spawn": [step],
                                         "await": 10}]})
    spawned = worker.jobs(1)[0]
    assert spawned["origin"] == root_id and spawned["parent"] is None
    worker.finish(spawned, state="failed", error="step broke", retry=False)
    poll_until(lambda: state_of(client, root_id) == "failed", what="the root failed with its step")
    assert "step broke" in client.get(root_id)["error"]
    worker.close()


def test_deleting_a_child_a_parent_waits_for_counts_it_as_failed(running, client):
    worker = ScriptedWorker(running.endpoint, credit=1)
    [parent_id] = client.submit([job()])["ids"]
    parent = worker.jobs(1)[0]
    worker.send(p.RESULTS, {"results": [{"id": parent["id"], "attempt": 1, "state": "done",
                                         "spawn": [{"kind": "echo", "parent": parent_id}], "await": 1}]})
    child_id = poll_until(lambda: [j["id"] for j in client.list_jobs(namespace="default")["jobs"] if j["parent"]],
                          what="the child stored")[0]
    client.delete(child_id)
    poll_until(lambda: state_of(client, parent_id) == "failed", what="the parent ended")
    worker.close()


def test_an_unknown_peer_is_told_to_register_once_for_a_burst_of_messages(running, client):
    import zmq
    peer = zmq.Context.instance().socket(zmq.DEALER)
    peer.setsockopt(zmq.LINGER, 0)
    peer.connect(running.endpoint)
    for _ in range(30):  # what a worker had queued while its broker restarted
        peer.send_multipart([p.WORKER, p.HEARTBEAT, p.pack({"held": [], "seen": 0})])
    client.health()  # the broker has read them by now (one socket, in order)
    client.health()
    told = []
    while peer.poll(200):
        told.append(peer.recv_multipart()[1])
    assert told == [p.DISCONNECT]
    peer.close(0)


def test_nul_in_an_id_or_a_filter_is_bad_input_not_a_storage_error(client):
    """PostgreSQL text cannot hold NUL: asking for it is not found or invalid, never an internal error."""
    with pytest.raises(JobNotFound):
        client.get("a\x00")
    for filters in ({"queue": "a\x00"}, {"kind": "\x00"}, {"labels": {"a": "\x00"}}, {"labels": {"\x00": "a"}}):
        with pytest.raises(ValidationError):
            client.list_jobs(**filters)
    assert client.list_jobs()["jobs"] == []
