"""Lock tokens: each attempt's holder may write progress and log lines while it runs; no one else with a token may."""
import pytest

from tubeway.core import protocol as p
from tubeway.core.client import BrokerClient
from tubeway.core.errors import LockRefused
from brokerkit import BrokerThread, ScriptedWorker, job, poll_until

pytestmark = pytest.mark.integration


def test_the_holder_writes_progress_and_lines_that_the_result_keeps(running, client):
    worker = ScriptedWorker(running.endpoint)
    [job_id] = client.submit([job()])["ids"]
    [held] = worker.jobs()
    assert len(held["lock"]) >= 32 and "lock" not in client.get(job_id)
    client.note(job_id, progress=40, logs=["first"], lock=held["lock"])
    client.note(job_id, logs=["second"])  # a trusted caller (an API token at the front end) needs no lock
    seen = client.get(job_id)
    assert (seen["progress"], seen["logs"]) == (40, ["first", "second"])
    worker.send(p.RESULTS, {"results": [{"id": job_id, "attempt": 1, "state": "done", "result": "ok",
                                         "logs": ["from the result"]}]})
    done = poll_until(lambda: client.get(job_id)["state"] == "done" and client.get(job_id))
    assert done["logs"] == ["first", "second", "from the result"] and done["progress"] == 40
    with pytest.raises(LockRefused):
        client.note(job_id, progress=100, lock=held["lock"])  # its attempt no longer holds the job
    worker.close()


def test_a_token_of_another_attempt_or_a_made_up_one_is_refused(running, client):
    worker = ScriptedWorker(running.endpoint)
    [job_id] = client.submit([job(attempts=2, backoff=0)])["ids"]
    [first] = worker.jobs()
    with pytest.raises(LockRefused):
        client.note(job_id, progress=1, lock="f" * 40)
    worker.finish(first, state="failed", error="try again")
    [second] = worker.jobs()
    assert second["lock"] != first["lock"]
    with pytest.raises(LockRefused):
        client.note(job_id, progress=1, lock=first["lock"])
    assert client.note(job_id, progress=2, lock=second["lock"])["progress"] == 2
    worker.close()


def test_tokens_stay_valid_across_a_broker_restart_for_jobs_that_keep_their_attempt(db_url):
    broker = BrokerThread(db_url).start()
    try:
        with BrokerClient(broker.endpoint, timeout=5) as client:
            [job_id] = client.submit([job(kind="external", namespace="ext")])["ids"]
            taken = client.take("ext", kinds=["external"], lease=60)
            assert taken["id"] == job_id
            record = broker.broker.store.get(job_id)
            token = broker.broker.jobs.locks.token(record)
    finally:
        broker.stop()
    broker = BrokerThread(db_url).start()
    try:
        with BrokerClient(broker.endpoint, timeout=5) as client:
            assert client.note(job_id, progress=5, lock=token, namespace="ext")["progress"] == 5
    finally:
        broker.stop()
