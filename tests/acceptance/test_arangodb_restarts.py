"""ArangoDB tasks with real processes: a periodic task survives kill -9 of the whole ``tubeway up`` group.

Unlike the original, Tubeway keeps its tasks over a restart (API-NOTES section 3): after the
group is killed and ``tubeway up`` started again on the same data directory, the task is
still listed with the same body and its runs go on.
"""
import os
import signal
import time

import pytest

from twkit import poll_until

pytestmark = pytest.mark.acceptance

TOKEN = "restart-secret"
TASK_ID = "beat"
#: Runs return the params, so each run's result shows the command and its params reached the worker.
BODY = {"id": TASK_ID, "name": "heartbeat", "command": "return params;", "params": {"beat": 1}, "period": 1}


def done_runs(cluster, task_id, since=0.0):
    """The task's runs (native API, labelled ``task_id``) done and created after ``since`` (epoch seconds)."""
    response = cluster.get("/api/v1/jobs", params={"namespace": "arangodb", "label": f"task_id:{task_id}",
                                                   "state": "done", "limit": 1000})
    assert response.status_code == 200, response.text
    return [job for job in response.json()["jobs"] if job["created_at"] > since]


def up(cluster):
    """Start ``tubeway up`` with the auth token; its xprocess name."""
    return cluster.up("--processes", "1", "--auth-token", TOKEN)


def test_a_periodic_task_survives_kill_9_of_the_group_and_runs_again(cluster):
    cluster.tokens = [TOKEN]
    first = up(cluster)
    created = cluster.post("/_api/tasks", json=BODY)
    assert created.status_code == 200, created.text
    task = created.json()
    assert task["id"] == TASK_ID and task["type"] == "periodic" and task["period"] == 1
    assert cluster.get(f"/_api/tasks/{TASK_ID}").json() == task

    runs = poll_until(lambda: len(done_runs(cluster, TASK_ID)) >= 2 and done_runs(cluster, TASK_ID), timeout=30,
                      what="two runs done")
    assert all(run["result"] == {"beat": 1} for run in runs)
    assert {run["queue"] for run in runs} == {"_system"}

    os.killpg(cluster.pid(first), signal.SIGKILL)
    poll_until(lambda: not cluster.healthy(), what="the group gone")
    restarted = time.time()
    up(cluster)

    again = cluster.get(f"/_api/tasks/{TASK_ID}")
    assert again.status_code == 200, again.text
    assert again.json() == task
    assert cluster.get("/_api/tasks").json() == [task]
    after = poll_until(lambda: done_runs(cluster, TASK_ID, since=restarted), timeout=30,
                       what="a run after the restart")
    assert after[0]["result"] == {"beat": 1}

    deleted = cluster.delete(f"/_api/tasks/{TASK_ID}")
    assert deleted.status_code == 200 and deleted.json() == {"error": False, "code": 200}
    assert cluster.get(f"/_api/tasks/{TASK_ID}").status_code == 404
