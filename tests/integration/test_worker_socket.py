"""Worker processes against a minimal broker: a real ROUTER socket on 127.0.0.1 played by the test."""
import os
import signal
import subprocess
import sys
import time

import pytest
import zmq

from tubeway.core import protocol as p

pytestmark = pytest.mark.integration
HEARTBEAT = 0.2


class MiniBroker:
    """A ROUTER socket speaking the worker side of the protocol; answers heartbeats, counts them."""

    def __init__(self):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.heartbeats = 0
        self.answer_heartbeats = True

    def send(self, identity, command, body=None):
        self.socket.send_multipart([identity, p.WORKER, command, p.pack(body or {})])

    def recv(self, command, timeout=10.0):
        """The next ``(identity, body)`` of ``command``; heartbeats are answered and counted on the way."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.socket.poll(remaining * 1000):
                raise AssertionError(f"no {command!r} within {timeout} s")
            identity, header, got, body = self.socket.recv_multipart()
            assert header == p.WORKER
            if got == p.HEARTBEAT:
                self.heartbeats += 1
                if self.answer_heartbeats:
                    self.send(identity, p.HEARTBEAT)
            if got == command:
                return identity, p.unpack(body)

    def results(self, count, timeout=10.0):
        """Results until ``count`` have arrived: ``({id: result}, messages)``."""
        results, messages = {}, 0
        while len(results) < count:
            _, body = self.recv(p.RESULTS, timeout)
            messages += 1
            results.update((r["id"], r) for r in body["results"])
        return results, messages

    def close(self):
        self.socket.close(0)
        self.context.term()


@pytest.fixture
def broker():
    broker = MiniBroker()
    try:
        yield broker
    finally:
        broker.close()


def start(module, broker, tmp_path, **settings):
    env = dict(os.environ, TUBEWAY_BROKER=broker.endpoint, TUBEWAY_HEARTBEAT_SECONDS=str(HEARTBEAT),
               TUBEWAY_WORKER_LIVENESS_SECONDS="5", TUBEWAY_PLUGINS="testing", TUBEWAY_WORKER_THREADS="2",
               TUBEWAY_LOG_LEVEL="DEBUG")
    env.update({f"TUBEWAY_{name.upper()}": str(value) for name, value in settings.items()})
    # cwd is a scratch directory so a checkout's folders never shadow the package.
    return subprocess.Popen([sys.executable, "-m", module], env=env, cwd=tmp_path)


def stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def processes():
    started = []
    try:
        yield started
    finally:
        for process in started:
            stop(process)


@pytest.fixture
def worker(broker, processes, tmp_path):
    def launch(**settings):
        process = start("tubeway.workers.worker", broker, tmp_path, **settings)
        processes.append(process)
        return process
    return launch


def job(job_id, kind, payload=None, timeout=None, attempts=1):
    return {"id": job_id, "kind": kind, "payload": payload, "attempts": attempts, "timeout": timeout,
            "queue": "default", "namespace": "default"}


def test_ready_then_results_for_echo_and_fail(broker, worker):
    process = worker(worker_prefetch=7, worker_threads=3)
    identity, ready = broker.recv(p.READY, timeout=20)
    assert {"noop", "echo", "sleep", "fail", "spawn"} <= set(ready["kinds"])
    # Before it has timed a job a worker asks for two per thread, within the prefetch bound.
    assert ready["credit"] == 6 and ready["pid"] == process.pid and ready["queues"] is None
    broker.send(identity, p.JOBS, {"jobs": [job("a", "echo", {"x": 1}, attempts=3), job("b", "fail", "boom")]})
    results, _ = broker.results(2)
    assert results["a"]["state"] == "done" and results["a"]["result"] == {"x": 1} and results["a"]["attempt"] == 3
    assert results["b"]["state"] == "failed" and results["b"]["error"] == "FailedOnPurpose: boom"
    assert set(results["a"]) == set(p.RESULT_KEYS)
    assert isinstance(results["a"]["duration"], float) and results["a"]["duration"] >= 0


def test_a_job_that_spawns_is_answered_with_its_children_and_what_it_awaits(broker, worker):
    worker()
    identity, _ = broker.recv(p.READY, timeout=20)
    children = [{"kind": "echo", "payload": n, "queue": "kids", "attempts": 2} for n in range(3)]
    broker.send(identity, p.JOBS, {"jobs": [
        job("parent", "spawn", {"children": children, "await": True}),
        job("quiet", "spawn", {"children": children[:1]}),
        job("bad", "spawn", {"children": [{"kind": "nosuch"}], "await": True}),
    ]})
    results, _ = broker.results(3)
    parent = results["parent"]
    assert parent["state"] == "done" and parent["result"] == {"spawned": 3} and parent["await"] == 3
    assert set(parent) == set(p.RESULT_KEYS) | {"spawn", "await"}
    assert [c["payload"] for c in parent["spawn"]] == [0, 1, 2]
    assert all(c["parent"] == "parent" and c["namespace"] == "default" and c["queue"] == "kids"
               and c["max_attempts"] == 2 and c["kind"] == "echo" for c in parent["spawn"])
    assert len(results["quiet"]["spawn"]) == 1 and "await" not in results["quiet"]
    bad = results["bad"]
    assert bad["state"] == "failed" and "spawn" not in bad and "await" not in bad
    assert bad["error"] == "SpawnError: spawned job 0 is invalid: no installed plugin runs jobs of kind 'nosuch'"


def test_heartbeats_keep_coming_while_a_job_runs(broker, worker):
    worker(worker_threads=1)
    identity, _ = broker.recv(p.READY, timeout=20)
    broker.send(identity, p.JOBS, {"jobs": [job("s", "sleep", 1.5)]})
    before = broker.heartbeats
    results, _ = broker.results(1)
    assert results["s"]["state"] == "done"
    assert broker.heartbeats - before >= 4


def test_a_job_past_its_timeout_is_reported_at_the_deadline(broker, worker):
    worker()
    identity, _ = broker.recv(p.READY, timeout=20)
    started = time.monotonic()
    broker.send(identity, p.JOBS, {"jobs": [job("t", "sleep", 60, timeout=0.3)]})
    results, _ = broker.results(1)
    assert results["t"]["error"] == "timed out after 0.3 s" and time.monotonic() - started < 5


def test_disconnect_from_the_broker_means_register_again(broker, worker):
    worker()
    identity, _ = broker.recv(p.READY, timeout=20)
    broker.send(identity, p.DISCONNECT)
    again, _ = broker.recv(p.READY)
    assert again == identity


def test_a_silent_broker_means_a_fresh_socket_and_ready_again(broker, worker):
    worker(worker_liveness_seconds=1)
    identity, _ = broker.recv(p.READY, timeout=20)
    broker.answer_heartbeats = False
    again, _ = broker.recv(p.READY, timeout=10)
    assert again != identity


def test_results_come_back_in_batches(broker, worker):
    worker(worker_threads=4)
    identity, _ = broker.recv(p.READY, timeout=20)
    count = 5000
    started = time.monotonic()
    for start in range(0, count, 500):
        broker.send(identity, p.JOBS, {"jobs": [job(str(n), "noop") for n in range(start, start + 500)]})
    results, messages = broker.results(count, timeout=30)
    elapsed = time.monotonic() - started
    assert all(r["state"] == "done" for r in results.values())
    assert messages < count / 5
    print(f"{count} noop jobs in {elapsed:.2f} s ({count / elapsed:.0f}/s) in {messages} RESULTS messages")


def test_sigterm_finishes_running_jobs_then_disconnects(broker, worker):
    process = worker(worker_threads=1)
    identity, _ = broker.recv(p.READY, timeout=20)
    broker.send(identity, p.JOBS, {"jobs": [job("long", "sleep", 0.8), job("waiting", "echo", "x")]})
    broker.recv(p.HEARTBEAT)
    process.send_signal(signal.SIGTERM)
    results, _ = broker.results(2)
    assert results["long"]["state"] == "done" and results["waiting"]["state"] == p.RETURNED
    broker.recv(p.DISCONNECT)
    assert process.wait(10) == 0


def test_the_pool_runs_restarts_and_stops_its_workers(broker, processes, tmp_path):
    pool = start("tubeway.workers.pool", broker, tmp_path, processes=2)
    processes.append(pool)
    pids = {broker.recv(p.READY, timeout=30)[1]["pid"] for _ in range(2)}
    assert len(pids) == 2 and pool.pid not in pids
    victim = pids.pop()
    os.kill(victim, signal.SIGKILL)
    _, ready = broker.recv(p.READY, timeout=20)
    assert ready["pid"] not in (victim, *pids)
    pool.send_signal(signal.SIGTERM)
    broker.recv(p.DISCONNECT)
    broker.recv(p.DISCONNECT)
    assert pool.wait(20) == 0


def test_started_jobs_are_announced_and_fast_jobs_earn_more_credit(broker, worker):
    worker(worker_prefetch=500, worker_threads=2)
    identity, ready = broker.recv(p.READY, timeout=20)
    broker.send(identity, p.JOBS, {"jobs": [job(f"n{i}", "noop") for i in range(50)]})
    results, credits = {}, []
    while len(results) < 50:
        _, body = broker.recv(p.RESULTS)
        results.update((r["id"], r) for r in body["results"])
        credits.append(body["credit"])
    assert all(r["state"] == "done" for r in results.values())
    assert credits[-1] > ready["credit"]  # noop jobs take microseconds: a deep prefetch pays
    broker.send(identity, p.JOBS, {"jobs": [job("slow", "sleep", 1.0)]})
    _, body = broker.recv(p.RESULTS)
    assert body["started"] == ["slow"] and body["results"] == []
    _, body = broker.recv(p.RESULTS)
    assert body["results"][0]["id"] == "slow" and body["credit"] == 2  # slow jobs: one per thread


def _heartbeat(broker, identity_hint=None, timeout=10.0):
    return broker.recv(p.HEARTBEAT, timeout)[1]


def test_heartbeats_name_the_jobs_held_and_how_many_jobs_messages_were_read(broker, worker):
    worker()
    identity, _ = broker.recv(p.READY, timeout=20)
    assert _heartbeat(broker) == {"held": [], "seen": 0}
    broker.send(identity, p.JOBS, {"jobs": [job("slow", "sleep", 1.0)]})
    deadline = time.monotonic() + 10
    while _heartbeat(broker) != {"held": ["slow"], "seen": 1}:
        assert time.monotonic() < deadline, "the held job never showed in a heartbeat"
    results, _ = broker.results(1)
    assert results["slow"]["state"] == "done"
    assert _heartbeat(broker) == {"held": [], "seen": 1}


def test_bad_bytes_from_the_broker_never_stop_a_worker(broker, worker):
    worker()
    identity, _ = broker.recv(p.READY, timeout=20)
    for frames in ([p.WORKER, p.JOBS, b"\xc1"], [p.WORKER, p.JOBS, p.pack([1, 2])],
                   [p.WORKER, p.JOBS, p.pack({"jobs": [1, {"id": 2}, "x"]})], [p.WORKER, p.JOBS, p.pack({"jobs": 5})],
                   [p.WORKER, p.ABORT, p.pack({"ids": 7})], [b"junk"], [p.WORKER, b"WHAT", b""]):
        broker.socket.send_multipart([identity, *frames])
    broker.send(identity, p.JOBS, {"jobs": [job("after", "echo", "still here")]})
    results, _ = broker.results(1)
    assert results["after"]["result"] == "still here"
