"""``javascript`` jobs through the native API on real processes: results, logs, limits, a worker that survives."""
import psutil
import pytest

from twkit import poll_until

pytestmark = pytest.mark.acceptance


def submit(server, command, **payload):
    response = server.post("/api/v1/jobs", json={"kind": "javascript", "payload": {"command": command, **payload}})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def ended(server, job_id):
    job = server.get(f"/api/v1/jobs/{job_id}").json()
    return job if job["state"] in ("done", "failed", "cancelled") else None


def one_js_thread(cluster, seconds):
    """``cluster`` up with one worker process running one ``javascript`` job at a time, and small limits."""
    cluster.up("--processes", "1", "--js-concurrency", "1", "--js-time-limit", str(seconds),
               "--js-memory-limit", str(32 * 1024 * 1024))
    return cluster


def worker_pid(job):
    """The pid of the worker process that ran ``job`` (its ``worker`` is ``host/pid/...``)."""
    return int(job["worker"].split("/")[1])


def test_a_run_gives_back_its_result_and_logs(server):
    job_id = submit(server, "print('hello', params.name); console.log('n is', params.n);"
                            "return {doubled: params.n * 2, name: params.name}", params={"n": 21, "name": "js"})
    job = poll_until(lambda: ended(server, job_id))
    assert job["state"] == "done", job["error"]
    assert job["result"] == {"doubled": 42, "name": "js"}
    assert job["logs"] == ["hello js", "n is 21"]


def test_a_command_that_throws_fails_with_its_message(server):
    job = poll_until(lambda: ended(server, submit(server, "throw new RangeError('out of range')")))
    assert job["state"] == "failed" and job["error"] == "JavaScriptError: RangeError: out of range"


def test_a_bad_payload_is_refused(server):
    response = server.post("/api/v1/jobs", json={"kind": "javascript", "payload": {"command": ""}})
    assert response.status_code == 400 and response.json()["field"] == "payload"


def test_an_infinite_loop_fails_at_the_limit_and_the_next_job_runs_on_the_same_worker(cluster):
    server = one_js_thread(cluster, 1)
    loop_id = submit(server, "print('spinning'); while (true) {}")
    next_id = submit(server, "return 'after the loop'")
    loop = poll_until(lambda: ended(server, loop_id))
    assert loop["state"] == "failed"
    assert loop["error"] == "JavaScriptLimit: the command ran past js_time_limit (1 s) and was stopped"
    assert loop["logs"] == ["spinning"]
    after = poll_until(lambda: ended(server, next_id))
    assert after["result"] == "after the loop"
    assert worker_pid(after) == worker_pid(loop) and psutil.pid_exists(worker_pid(loop))


def test_a_memory_bomb_fails_at_the_limit_and_the_worker_survives(cluster):
    server = one_js_thread(cluster, 30)
    bomb_id = submit(server, "const a = []; while (true) a.push(new Array(10000).fill(1.5));")
    bomb = poll_until(lambda: ended(server, bomb_id))
    assert bomb["state"] == "failed" and "js_memory_limit" in bomb["error"]
    after = poll_until(lambda: ended(server, submit(server, "return 1")))
    assert after["result"] == 1 and worker_pid(after) == worker_pid(bomb)
