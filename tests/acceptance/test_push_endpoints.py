"""``push`` jobs on real processes: a queue's registered HTTP endpoint gets each job, within its concurrency."""
import json
import os
import signal
import threading
import time

import pytest

from json_endpoint import JsonEndpoint
from twkit import module_cluster, poll_until

pytestmark = pytest.mark.acceptance

TOKEN = "push-secret"


class Endpoint(JsonEndpoint):
    """A loopback endpoint: its answer depends on the job's payload; it records bodies and the most in flight."""

    def __init__(self, api):
        self.api = api
        self.bodies, self.in_flight, self.most = [], 0, 0
        self.lock = threading.Lock()
        super().__init__(lambda method, path, body, headers: self.answer(body, headers))
        self.url = self.url("/run")

    def answer(self, body, headers):
        with self.lock:
            self.bodies.append((body, headers))
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            return self.behave(body)
        finally:
            with self.lock:
                self.in_flight -= 1

    def behave(self, body):
        job, token = body["job"], body["token"]
        order = job["payload"]
        if order.get("sleep"):
            time.sleep(order["sleep"])
        if order.get("note"):
            self.api.post(f"/api/v1/jobs/{job['id']}/note", json={"progress": 100, "logs": ["from the endpoint"],
                                                                  "lock": token})
        if order.get("status"):
            return order["status"], "text/plain", b"nope"
        if order.get("json"):
            return 200, "application/json", json.dumps({"answer": order["json"]}).encode()
        return 200, "text/plain; charset=utf-8", b"foo bar"



@pytest.fixture(scope="module")
def api(xprocess, tmp_path_factory):
    with module_cluster(xprocess, tmp_path_factory.mktemp("push"), TOKEN, "--processes", "2") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def endpoint(api):
    server = Endpoint(api)
    yield server
    server.close()


def submit(api, queue, *payloads, **fields):
    response = api.post("/api/v1/jobs", json=[dict(fields, kind="push", queue=queue, payload=p) for p in payloads])
    assert response.status_code == 201, response.text
    return response.json()["ids"]


def register(api, queue, url, **fields):
    response = api.put(f"/api/v1/endpoints/default/{queue}", json=dict(fields, url=url))
    assert response.status_code == 200, response.text
    return response.json()


def ended(api, job_id):
    job = api.get(f"/api/v1/jobs/{job_id}").json()
    return job if job["state"] in ("done", "failed", "cancelled") else None


def test_jobs_wait_for_an_endpoint_then_flow_with_its_answer_as_result(api, endpoint):
    text_id, json_id = submit(api, "waits", {}, {"json": [1, 2]})
    time.sleep(0.5)  # nothing can run them: they must still be queued (no endpoint)
    assert {api.get(f"/api/v1/jobs/{i}").json()["state"] for i in (text_id, json_id)} == {"queued"}
    register(api, "waits", endpoint.url, headers={"X-Team": "a"})
    assert poll_until(lambda: ended(api, text_id))["result"] == "foo bar"
    assert poll_until(lambda: ended(api, json_id))["result"] == {"answer": [1, 2]}
    body, headers = next((b, h) for b, h in endpoint.bodies if b["job"]["id"] == text_id)
    assert headers["X-Team"] == "a" and len(body["token"]) >= 32
    assert "lock" not in body["job"] and "endpoint" not in body["job"] and body["job"]["queue"] == "waits"


def test_an_endpoints_concurrency_bounds_its_queue_across_every_worker_process(api, endpoint):
    endpoint.most = 0
    register(api, "bounded", endpoint.url, concurrency=2)
    ids = submit(api, "bounded", *[{"sleep": 0.5}] * 6)  # long enough that two always overlap
    for job_id in ids:
        assert poll_until(lambda: ended(api, job_id), timeout=30)["state"] == "done"
    assert endpoint.most == 2


def test_a_failing_answer_or_a_timeout_fails_the_attempt_and_attempts_retry(api, endpoint):
    register(api, "failing", endpoint.url, timeout=0.3)
    [bad] = submit(api, "failing", {"status": 500}, attempts=2, backoff=0)
    [slow] = submit(api, "failing", {"sleep": 1.5})
    failed = poll_until(lambda: ended(api, bad), timeout=30)
    assert (failed["state"], failed["attempts"], failed["error"]) == ("failed", 2, "Internal Server Error")
    timed_out = poll_until(lambda: ended(api, slow), timeout=30)
    assert timed_out["state"] == "failed" and "timed out" in timed_out["error"]


def test_the_token_holder_writes_progress_and_lines_and_a_stale_token_is_refused(api, endpoint):
    register(api, "noted", endpoint.url)
    [job_id] = submit(api, "noted", {"note": True})
    done = poll_until(lambda: ended(api, job_id))
    assert (done["state"], done["progress"], done["logs"]) == ("done", 100, ["from the endpoint"])
    token = next(b["token"] for b, _ in endpoint.bodies if b["job"]["id"] == job_id)
    stale = api.post(f"/api/v1/jobs/{job_id}/note", json={"progress": 1, "lock": token})
    assert stale.status_code == 409 and api.get(f"/api/v1/jobs/{job_id}").json()["progress"] == 100


def test_endpoints_are_listed_replaced_and_deleted(api, endpoint):
    register(api, "listed", endpoint.url, concurrency=3, method="PUT")
    register(api, "listed", endpoint.url + "?v=2", concurrency=4)
    [found] = [e for e in api.get("/api/v1/endpoints").json()["endpoints"] if e["queue"] == "listed"]
    assert (found["url"], found["method"], found["concurrency"]) == (endpoint.url + "?v=2", "POST", 4)
    assert api.delete("/api/v1/endpoints/default/listed").status_code == 200
    assert api.delete("/api/v1/endpoints/default/listed").status_code == 404
    assert api.put("/api/v1/endpoints/default/x", json={"url": "ftp://x"}).status_code == 400
    assert api.put("/api/v1/endpoints/default/x", json={"url": endpoint.url, "concurrency": 0}).status_code == 400


def test_an_endpoint_survives_a_kill_9_and_restart_and_its_jobs_flow_after(cluster):
    server = Endpoint(None)
    try:
        first = cluster.up("--processes", "1")
        register(cluster, "durable", server.url, concurrency=1)
        os.killpg(cluster.pid(first), signal.SIGKILL)
        poll_until(lambda: not cluster.healthy(), what="the group gone")
        cluster.up("--processes", "1")
        [job_id] = submit(cluster, "durable", {})
        assert poll_until(lambda: ended(cluster, job_id))["result"] == "foo bar"
        assert [e["queue"] for e in cluster.get("/api/v1/endpoints").json()["endpoints"]] == ["durable"]
    finally:
        server.close()
