"""Cancelling a job a worker process runs: ``cancelling`` until the run has stopped, then ``cancelled``."""
import pytest

from tubeway.core import protocol as p
from tubeway.core.client import BrokerClient
from brokerkit import BrokerThread, ScriptedWorker, job, poll_until, state_of

pytestmark = pytest.mark.integration


def test_a_running_job_is_cancelling_until_its_worker_answers_then_cancelled(running, client):
    worker = ScriptedWorker(running.endpoint)
    [job_id] = client.submit([job()])["ids"]
    [held] = worker.jobs()
    assert client.cancel(job_id)["state"] == "cancelling"
    assert worker.aborted(1) == [job_id]
    assert client.cancel(job_id)["state"] == "cancelling"  # asking again changes nothing
    assert client.list_jobs(states=["cancelling"])["jobs"][0]["id"] == job_id
    assert client.wait(job_id, timeout=0.2)["state"] == "cancelling"
    worker.finish(held, state="failed", error="stopped by a signal")
    assert poll_until(lambda: client.get(job_id)["state"] == "cancelled")
    assert client.get(job_id)["error"] == "cancelled"
    worker.close()


def test_a_cancelling_job_whose_worker_is_lost_ends_cancelled_not_queued(running, client):
    worker = ScriptedWorker(running.endpoint)
    [job_id] = client.submit([job(attempts=3)])["ids"]
    worker.jobs()
    worker.send(p.RESULTS, {"results": [], "started": [job_id]})
    assert client.cancel(job_id)["state"] == "cancelling"
    worker.close()  # never answers: lost after the liveness period
    poll_until(lambda: state_of(client, job_id) == "cancelled", timeout=15)


def test_a_job_cancelled_before_it_began_is_handed_back_and_ends_cancelled(running, client):
    worker = ScriptedWorker(running.endpoint)
    [job_id] = client.submit([job()])["ids"]
    [held] = worker.jobs()
    assert client.cancel(job_id)["state"] == "cancelling"
    worker.send(p.RESULTS, {"results": [{"id": job_id, "attempt": held["attempts"], "state": p.RETURNED}]})
    assert poll_until(lambda: client.get(job_id)["state"] == "cancelled")
    worker.close()


def test_a_cancelling_job_ends_cancelled_when_the_broker_restarts(db_url):
    broker = BrokerThread(db_url).start()
    try:
        with BrokerClient(broker.endpoint, timeout=5) as client:
            worker = ScriptedWorker(broker.endpoint)
            [job_id] = client.submit([job()])["ids"]
            worker.jobs()
            assert client.cancel(job_id)["state"] == "cancelling"
            worker.close()
    finally:
        broker.stop()
    broker = BrokerThread(db_url).start()  # the worker went down with the broker: its run is gone
    try:
        with BrokerClient(broker.endpoint, timeout=5) as client:
            assert client.get(job_id)["state"] == "cancelled"
    finally:
        broker.stop()
