"""The broker over real sockets: clients, scripted workers, timers, recovery."""
import threading
import time

import pytest

from tubeway.core import protocol as p
from tubeway.core.client import BrokerClient
from tubeway.core.errors import JobConflict, JobNotFound, ValidationError
from brokerkit import BrokerThread, ScriptedWorker, gone, job, poll_until, state_of

pytestmark = pytest.mark.integration


def test_a_worker_runs_jobs_and_results_are_stored(running, client):
    worker = ScriptedWorker(running.endpoint)
    ids = client.submit([job(payload=i) for i in range(3)])["ids"]
    for got in worker.jobs(3):
        worker.finish(got, result=got["payload"] * 10)
    poll_until(lambda: all(state_of(client, i) == "done" for i in ids))
    assert [client.get(i)["result"] for i in ids] == [0, 10, 20]
    worker.close()


def test_failed_attempts_are_retried_until_attempts_run_out(running, client):
    worker = ScriptedWorker(running.endpoint)
    [job_id] = client.submit([job(attempts=2, backoff=0)])["ids"]
    worker.finish(worker.jobs()[0], state="failed", error="boom")
    second = worker.jobs()[0]
    assert second["attempts"] == 2
    worker.finish(second, state="failed", error="boom again")
    poll_until(lambda: state_of(client, job_id) == "failed")
    assert client.get(job_id)["error"] == "boom again"
    worker.close()


def test_a_silent_worker_loses_its_jobs_to_another(running, client):
    silent = ScriptedWorker(running.endpoint)
    [job_id] = client.submit([job(attempts=2, backoff=0)])["ids"]
    held = silent.jobs()[0]
    silent_worker = held["worker"]
    silent.send(p.RESULTS, {"results": [], "started": [held["id"]]})
    other = ScriptedWorker(running.endpoint)
    again = other.jobs(timeout=5)[0]
    assert again["id"] == job_id and again["attempts"] == 2
    assert client.get(job_id)["worker"] == again["worker"] != silent_worker
    other.finish(again, result="ok")
    poll_until(lambda: state_of(client, job_id) == "done")
    silent.close()
    other.close()


def test_delayed_jobs_wait_for_their_time(running, client):
    [job_id] = client.submit([job(kind="external", namespace="accepted", delay=0.5)])["ids"]
    assert state_of(client, job_id) == "delayed"
    assert client.take("accepted") is None
    taken = client.take("accepted", block=3)
    assert taken["id"] == job_id and taken["state"] == "running"


def test_take_respects_priority_then_age(client):
    ids = client.submit([job(kind="external", namespace="accepted", priority=p) for p in (2, 1, 1, 0)])["ids"]
    order = [client.take("accepted")["id"] for _ in ids]
    assert order == [ids[3], ids[1], ids[2], ids[0]]


def test_an_expired_lease_requeues_and_running_extends_it(client):
    [job_id] = client.submit([job(kind="external", namespace="accepted")])["ids"]
    client.take("accepted", lease=0.3)
    client.update(job_id, "running", lease=0.6, namespace="accepted")
    time.sleep(0.4)
    assert state_of(client, job_id) == "running"
    poll_until(lambda: state_of(client, job_id) == "queued", timeout=3)


def test_job_timeout_fails_an_external_job(client):
    [job_id] = client.submit([job(kind="external", namespace="accepted", timeout=0.3)])["ids"]
    client.take("accepted")
    poll_until(lambda: state_of(client, job_id) == "failed", timeout=3)
    assert "timed out" in client.get(job_id)["error"]


def test_wait_returns_when_the_job_ends(client):
    [job_id] = client.submit([job(kind="external", namespace="accepted")])["ids"]
    assert client.wait(job_id, 0.2)["state"] == "queued"
    client.take("accepted")
    client.update(job_id, "done", result=7)
    assert client.wait(job_id, 5)["result"] == 7


def test_update_of_an_ended_job_conflicts(client):
    [job_id] = client.submit([job(kind="external", namespace="accepted")])["ids"]
    client.take("accepted")
    client.update(job_id, "failed", result="bad")
    with pytest.raises(JobConflict):
        client.update(job_id, "done")


def test_namespace_guard_hides_other_namespaces(client):
    [job_id] = client.submit([job()])["ids"]
    with pytest.raises(JobNotFound):
        client.get(job_id, namespace="accepted")


def test_result_ttl_expires_the_job(client):
    [job_id] = client.submit([job(kind="external", namespace="accepted", result_ttl=0.3)])["ids"]
    client.take("accepted")
    client.update(job_id, "done")
    assert state_of(client, job_id) == "done"
    poll_until(lambda: gone(client, job_id), timeout=3)


def test_cancel_retry_and_delete(client):
    [job_id] = client.submit([job(kind="external", namespace="accepted")])["ids"]
    assert client.cancel(job_id)["state"] == "cancelled"
    assert client.take("accepted") is None
    with pytest.raises(JobConflict):
        client.cancel(job_id)
    assert client.retry(job_id)["state"] == "queued"
    assert client.delete(job_id)["state"] == "queued"
    assert gone(client, job_id)


def test_unique_keys_return_the_existing_job(client):
    first = client.submit([job(unique_key="k"), job(unique_key="k")])
    assert first["ids"][0] == first["ids"][1] and first["created"] == [True, False]
    assert first["sequences"] == [1, None] and isinstance(first["created_at"], float)
    again = client.submit([job(unique_key="k")])
    assert again == {"ids": [first["ids"][0]], "created": [False], "sequences": [None], "created_at": None}


def test_bad_submissions_store_nothing(client):
    with pytest.raises(ValidationError) as error:
        client.submit([job(), {"kind": 5}])
    assert error.value.index == 1
    assert client.list_jobs()["jobs"] == []


def test_list_pages_with_labels(client):
    ids = client.submit([job(labels={"team": "a"}) for _ in range(3)] + [job(labels={"team": "b"})])["ids"]
    page = client.list_jobs(labels={"team": "a"}, limit=2)
    rest = client.list_jobs(labels={"team": "a"}, limit=2, cursor=page["next_cursor"])
    assert [j["id"] for j in page["jobs"] + rest["jobs"]] == ids[:3]
    assert rest["next_cursor"] is None


def test_callback_job_is_queued_when_a_job_ends(client):
    [job_id] = client.submit([job(kind="external", namespace="accepted", callback_url="http://127.0.0.1:9/cb")])["ids"]
    client.take("accepted")
    client.update(job_id, "done", result="r")
    [callback] = client.list_jobs(namespace="_system")["jobs"]
    assert callback["kind"] == "callback"
    assert callback["payload"]["url"] == "http://127.0.0.1:9/cb"
    ended = client.get(job_id)
    assert callback["payload"]["job"] == ended  # the ended job's record: the worker shapes the body


def test_restart_returns_worker_leases_and_keeps_everything(db_url):
    broker = BrokerThread(db_url).start()
    try:
        with BrokerClient(broker.endpoint, timeout=5) as client:
            worker = ScriptedWorker(broker.endpoint)
            [held, waiting] = client.submit([job(), job(kind="external", namespace="accepted")])["ids"]
            worker.jobs()
            worker.close()
    finally:
        broker.stop()
    again = BrokerThread(db_url, broker=broker.endpoint).start()
    try:
        assert again.recovered == 1
        with BrokerClient(again.endpoint, timeout=5) as client:
            record = client.get(held)
            assert record["state"] == "queued" and record["attempts"] == 0
            assert state_of(client, waiting) == "queued"
    finally:
        again.stop()


def test_health_and_metrics(running, client):
    assert client.health()["workers"] == 0
    worker = ScriptedWorker(running.endpoint, kinds=("noop",))
    poll_until(lambda: client.health()["workers"] == 1)
    client.submit([job()])
    text = client.metrics()["text"]
    assert 'tubeway_jobs{namespace="default",queue="default",state="queued"} 1.0' in text
    assert "tubeway_workers_connected 1.0" in text
    assert "tubeway_dispatch_latency_seconds_bucket" in text
    worker.close()


def test_jobs_returned_unstarted_go_back_without_counting_an_attempt(db_url):
    broker = BrokerThread(db_url, worker_liveness_seconds=30).start()
    try:
        with BrokerClient(broker.endpoint, timeout=5) as client:
            worker = ScriptedWorker(broker.endpoint)
            [job_id] = client.submit([job()])["ids"]
            held = worker.jobs()[0]
            worker.send(p.RESULTS, {"results": [{"id": held["id"], "attempt": held["attempts"],
                                                 "state": p.RETURNED}]})
            worker.send(p.DISCONNECT, {})
            poll_until(lambda: client.get(job_id)["state"] == "queued")
            assert client.get(job_id)["attempts"] == 0
            worker.close()
    finally:
        broker.stop()


def test_a_lost_worker_gives_back_jobs_it_never_started_without_an_attempt(running, client):
    silent = ScriptedWorker(running.endpoint, credit=5)
    ids = client.submit([job() for _ in range(3)])["ids"]
    held = silent.jobs(3)
    silent.send(p.RESULTS, {"results": [], "started": [held[0]["id"]]})
    other = ScriptedWorker(running.endpoint, credit=5)
    again = {j["id"]: j for j in other.jobs(2, timeout=5)}
    assert set(again) == {held[1]["id"], held[2]["id"]}
    assert all(j["attempts"] == 1 for j in again.values())
    poll_until(lambda: state_of(client, held[0]["id"]) == "failed")  # began, out of attempts
    assert ids
    silent.close()
    other.close()


def test_results_carry_the_workers_new_credit(running, client):
    worker = ScriptedWorker(running.endpoint, credit=1)
    client.submit([job() for _ in range(4)])
    first = worker.jobs(1)
    worker.send(p.RESULTS, {"results": [{"id": first[0]["id"], "attempt": 1, "state": "done"}], "credit": 3})
    assert len(worker.jobs(3)) == 3
    worker.close()


def test_queues_and_metrics_count_committed_jobs(client):
    client.submit([job(queue="counted"), job(queue="counted", delay=60)])
    [entry] = [q for q in client.queues()["queues"] if q["queue"] == "counted"]
    assert (entry["counts"]["queued"], entry["counts"]["delayed"]) == (1, 1)
    text = client.metrics()["text"]
    assert 'tubeway_jobs{namespace="default",queue="counted",state="delayed"} 1.0' in text


def test_counting_runs_off_the_loop_so_other_requests_go_on(running, client):
    release = threading.Event()
    answered = []
    running.broker.reads.submit(lambda: release.wait(10), lambda result, error: answered.append(result))
    try:
        [job_id] = client.submit([job()])["ids"]  # answered while the slow read still runs
        assert client.get(job_id)["state"] == "queued" and answered == []
    finally:
        release.set()
    poll_until(lambda: answered == [True], what="the slow read's answer on the loop")


def test_a_result_of_a_cancelled_lease_never_ends_the_retried_job(running, client):
    worker = ScriptedWorker(running.endpoint)
    [job_id] = client.submit([job(payload="x")])["ids"]
    [first] = worker.jobs()

    def result(lease, value):
        return {"results": [{"id": job_id, "attempt": 1, "lease": lease, "state": "done", "result": value}]}
    assert client.cancel(job_id)["state"] == "cancelling"  # until the worker answers that the run stopped
    worker.send(p.RESULTS, result(first["started_at"], "stopped"))
    assert poll_until(lambda: client.get(job_id)["state"] == "cancelled")
    client.retry(job_id)
    [second] = worker.jobs()
    assert second["attempts"] == first["attempts"] == 1 and second["started_at"] != first["started_at"]
    worker.send(p.RESULTS, result(first["started_at"], "stale"))
    worker.send(p.RESULTS, result(second["started_at"], "fresh"))
    assert poll_until(lambda: client.get(job_id)["state"] == "done" and client.get(job_id))["result"] == "fresh"
    worker.close()


def test_counts_asked_for_while_one_runs_share_the_next(running, client):
    reads, release, submitted = running.broker.reads, threading.Event(), []
    original = reads.submit

    def counting_submit(query, then):
        submitted.append(query)
        original(query, then)
    reads.submit = counting_submit
    original(lambda: release.wait(10), lambda result, error: None)  # hold the reading thread
    answers = []

    def ask():
        with BrokerClient(running.endpoint, timeout=10) as own:
            answers.append(own.queues())
    askers = [threading.Thread(target=ask) for _ in range(3)]
    askers[0].start()
    poll_until(lambda: len(submitted) == 1, what="the first count submitted")
    for asker in askers[1:]:
        asker.start()
    poll_until(lambda: len(running.broker.commands._counts_next) == 2, what="both waiting for the next count")
    release.set()
    for asker in askers:
        asker.join(10)
    assert len(answers) == 3 and len(submitted) == 2
