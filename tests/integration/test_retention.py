"""``keep_done`` / ``keep_failed``: a queue keeps only its newest N such ended jobs; a client-chosen id finds its job."""
import pytest

from tubeway.core.errors import JobNotFound
from brokerkit import ScriptedWorker, gone, job, poll_until

pytestmark = pytest.mark.integration


def run_all(worker, count, state="done"):
    for held in worker.jobs(count):
        worker.finish(held, state=state, error=None if state == "done" else "no", retry=False)


def test_a_queue_keeps_only_the_newest_ended_jobs_asked_for(running, client):
    worker = ScriptedWorker(running.endpoint, credit=20)
    done_ids = client.submit([job(queue="kept", payload=n, keep_done=2) for n in range(5)])["ids"]
    plain_ids = client.submit([job(queue="kept", payload="plain")])["ids"]
    run_all(worker, 6)
    poll_until(lambda: client.list_jobs(queue="kept", state="done", total=True)["total"] == 3)
    left = {j["id"] for j in client.list_jobs(queue="kept", state="done")["jobs"]}
    assert left == {*done_ids[-2:], *plain_ids}  # a job asking nothing is never pruned
    failed_ids = client.submit([job(queue="kept", keep_failed=0) for _ in range(3)])["ids"]
    run_all(worker, 3, state="failed")
    for job_id in failed_ids:
        poll_until(lambda: gone(client, job_id))
    worker.close()


def test_a_client_chosen_id_finds_its_job_in_its_namespace_only(client):
    [job_id] = client.submit([job(namespace="mine", unique_key="order-17")])["ids"]
    assert client.get_unique("order-17", namespace="mine")["id"] == job_id
    with pytest.raises(JobNotFound):
        client.get_unique("order-17", namespace="other")
