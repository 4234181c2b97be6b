"""Schedules with real processes: runs done by the pool, surviving kill -9 of the whole ``tubeway up`` group."""
import os
import signal
import time

import pytest

from twkit import poll_until

pytestmark = pytest.mark.acceptance


def done_runs(cluster, schedule_id):
    response = cluster.get("/api/v1/jobs", params={"label": f"schedule:{schedule_id}", "state": "done",
                                                   "limit": 1000})
    assert response.status_code == 200, response.text
    return response.json()["jobs"]


def test_a_periodic_echo_runs_and_fires_again_after_kill_9_of_the_group(cluster):
    first = cluster.up("--processes", "1")
    created = cluster.post("/api/v1/schedules", json={"id": "beat", "period": 1, "job": {"kind": "echo",
                                                                                        "payload": "tick"}})
    assert created.status_code == 201, created.text
    runs = poll_until(lambda: len(done_runs(cluster, "beat")) >= 2 and done_runs(cluster, "beat"), timeout=30,
                      what="two runs done")
    assert {run["result"] for run in runs} == {"tick"}
    assert 'tubeway_schedules{namespace="default",queue="default"} 1.0' in cluster.get("/metrics").text

    os.killpg(cluster.pid(first), signal.SIGKILL)
    poll_until(lambda: not cluster.healthy(), what="the group gone")
    restarted = time.time()
    cluster.up("--processes", "1")
    again = poll_until(lambda: [r for r in done_runs(cluster, "beat") if r["created_at"] > restarted],
                       timeout=30, what="a run after the restart")
    assert again[0]["result"] == "tick"
    schedule = cluster.get("/api/v1/schedules/beat").json()
    assert schedule["runs"] >= len(runs) + 1 and schedule["period"] == 1.0

    assert cluster.delete("/api/v1/schedules/beat").status_code == 200
    assert cluster.get("/api/v1/schedules/beat").status_code == 404
