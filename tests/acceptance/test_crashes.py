"""Crash safety with real processes: kill -9 the broker or a worker; workers on their own process."""
import os
import signal
import threading

import msgpack
import psutil
import pytest
import requests
import zmq

from tubeway.core import protocol as p

from twkit import poll_until
from procs import alive as _alive

pytestmark = pytest.mark.acceptance


def split_roles(cluster, processes=1):
    broker = cluster.start("broker")
    http = cluster.start("http", "--request-timeout", "2")
    worker = cluster.start("worker", "--processes", processes)
    poll_until(cluster.healthy, what="healthy")
    return broker, http, worker


def test_every_acknowledged_job_survives_kill_9_of_the_broker(cluster):
    broker, _, _ = split_roles(cluster)
    acknowledged, stop = [], threading.Event()

    def post_jobs():
        session = requests.Session()
        while not stop.is_set():
            try:
                response = session.post(f"{cluster.url}/jobs", json={"queue": "crash"}, timeout=5)
            except requests.RequestException:
                continue
            if response.status_code == 202:
                acknowledged.append(response.json()["id"])

    clients = [threading.Thread(target=post_jobs) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        poll_until(lambda: len(acknowledged) > 200, what="jobs posted")
        cluster.kill(broker)
        cluster.start("broker")
        count = len(acknowledged)
        poll_until(lambda: len(acknowledged) > count + 50, what="jobs posted after restart")
    finally:
        stop.set()
        for thread in clients:
            thread.join()
    missing = [i for i in acknowledged if cluster.get(f"/jobs/{i}").status_code != 200]
    assert missing == []


def test_a_job_held_by_a_killed_worker_runs_again_elsewhere(cluster):
    cluster.up("--processes", "2")
    poll_until(lambda: cluster.workers() == 2, what="two workers")
    response = cluster.post("/api/v1/jobs", json={"kind": "sleep", "payload": 2, "attempts": 2, "backoff": 0})
    job_id = response.json()["id"]
    job = poll_until(lambda: _running(cluster, job_id), what="job running")
    pid = int(job["worker"].split("/")[1])
    psutil.Process(pid).kill()
    done = poll_until(lambda: _state(cluster, job_id, "done"), timeout=30, what="job done")
    assert done["attempts"] == 2 and int(done["worker"].split("/")[1]) != pid


def test_a_worker_in_its_own_process_takes_jobs_over_tcp(cluster):
    split_roles(cluster, processes=1)
    job_id = cluster.post("/api/v1/jobs", json={"kind": "echo", "payload": "far"}).json()["id"]
    job = poll_until(lambda: _state(cluster, job_id, "done"), what="job done")
    assert job["result"] == "far"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_signalling_the_group_of_tubeway_up_leaves_nothing(cluster, sig):
    name = cluster.up("--processes", "2")
    leader = cluster.pid(name)
    family = [leader] + [c.pid for c in cluster.children(name)]
    assert len(family) >= 4  # broker, front end, pool supervisor, workers
    os.killpg(leader, sig)
    poll_until(lambda: not any(_alive(p) for p in family), timeout=20, what="all gone")


def _running(cluster, job_id):
    job = cluster.get(f"/api/v1/jobs/{job_id}").json()
    return job if job["state"] == "running" else None


def _state(cluster, job_id, state):
    job = cluster.get(f"/api/v1/jobs/{job_id}").json()
    return job if job["state"] == state else None


def test_kill_9_of_the_group_mid_queue_then_a_restart_strands_no_job(cluster):
    """The issue's report: 96 of 200 jobs stayed queued forever after this."""
    first = cluster.up("--processes", "2")
    ids = []
    for _ in range(4):
        response = cluster.post("/api/v1/jobs", json=[{"kind": "sleep", "payload": 0.2, "queue": "q"}] * 50)
        assert response.status_code == 201, response.text
        ids.extend(response.json()["ids"])

    def counts():
        jobs = cluster.get("/api/v1/jobs", params={"queue": "q", "limit": 1000}).json()["jobs"]
        states = [job["state"] for job in jobs]
        return states.count("running"), states.count("queued")
    poll_until(lambda: counts()[0] > 0 and counts()[1] > 20, what="some running, many queued")
    os.killpg(cluster.pid(first), signal.SIGKILL)
    poll_until(lambda: not cluster.healthy(), what="the group gone")
    cluster.up("--processes", "2")
    poll_until(lambda: all(_ended(cluster, job_id) for job_id in ids), timeout=60, what="every job ended")
    assert {_ended(cluster, job_id)["state"] for job_id in ids} == {"done"}


def test_a_malformed_ready_on_the_broker_socket_stops_nothing(cluster):
    cluster.up("--processes", "1")
    rogue = zmq.Context.instance().socket(zmq.DEALER)
    rogue.setsockopt(zmq.LINGER, 0)
    rogue.connect(cluster.broker)
    try:
        rogue.send_multipart([p.WORKER, p.READY, msgpack.packb({"kinds": ["noop"], "credit": "x"})])
        rogue.send_multipart([b"garbage"])
        rogue.send_multipart([p.CLIENT, p.SUBMIT, b"1", b"\xc1"])
        job_id = cluster.post("/api/v1/jobs", json={"kind": "echo", "payload": "alive"}).json()["id"]
        assert poll_until(lambda: _state(cluster, job_id, "done"), what="job done")["result"] == "alive"
        assert cluster.healthy()
    finally:
        rogue.close(0)


def _ended(cluster, job_id):
    job = cluster.get(f"/api/v1/jobs/{job_id}").json()
    return job if job["state"] in ("done", "failed", "cancelled") else None
