"""The Accepted jobs API against real processes (API-NOTES section 2)."""
import base64
import threading
import time

import pytest

from sink import Sink
from twkit import poll_until

pytestmark = pytest.mark.acceptance


def post_job(server, queue="q", params=None, headers=None):
    response = server.post("/jobs", json={"queue": queue, "params": params or {"n": 1}}, headers=headers)
    assert response.status_code == 202, response.text
    return response


def status(server, job_id):
    return server.get(f"/jobs/{job_id}").json()["status"]


def test_post_get_take_and_finish_a_job(server):
    response = post_job(server, params={"param1": "foo"})
    job = response.json()
    assert response.headers["Location"] == f"/jobs/{job['id']}"
    assert job["queue"] == "q" and job["status"] == "queued" and job["priority"] == 1
    assert job["params"] == {"param1": "foo"}
    assert server.get(f"/jobs/{job['id']}").json()["status"] == "queued"

    taken = server.post("/want_job")
    assert taken.status_code == 200 and taken.json()["id"] == job["id"]
    assert taken.json()["status"] == "running"
    assert server.post("/want_job").status_code == 204

    done = server.put(f"/jobs/{job['id']}", json={"status": "done", "result": "bar"})
    assert done.status_code == 200
    assert done.json()["status"] == "done" and done.json()["result"] == "bar"
    assert server.put(f"/jobs/{job['id']}", json={"status": "done"}).status_code == 409
    assert server.get(f"/jobs/{job['id']}").json()["result"] == "bar"


def test_data_is_an_older_name_for_params(server):
    response = server.post("/jobs", json={"queue": "q", "data": [1, 2]})
    assert response.status_code == 202 and response.json()["params"] == [1, 2]


@pytest.mark.parametrize("body", [{}, {"queue": ""}, {"queue": 5}, {"params": {}}, [1], "x"])
def test_a_job_needs_a_queue_name(server, body):
    response = server.post("/jobs", json=body)
    assert response.status_code == 400 and "error" in response.json()


@pytest.mark.parametrize("header,value", [
    ("X-Accepted-Priority", "4"), ("X-Accepted-Priority", "-1"), ("X-Accepted-Priority", "high"),
    ("X-Accepted-Delay", "1.5"), ("X-Accepted-Delay", "-3"), ("X-Accepted-Result-TTL", "x"),
    ("X-Accepted-Job-Timeout", "-1"),
])
def test_numeric_headers_must_be_non_negative_integers(server, header, value):
    response = server.post("/jobs", json={"queue": "q"}, headers={header: value})
    assert response.status_code == 400
    assert header.lower() in response.json()["error"].lower()


def test_priority_orders_jobs_and_fifo_within_a_level(server):
    ids = [post_job(server, headers={"X-Accepted-Priority": p}).json()["id"] for p in ("2", "0", "2", "0")]
    order = [server.post("/want_job").json()["id"] for _ in ids]
    assert order == [ids[1], ids[3], ids[0], ids[2]]


def test_want_job_can_be_restricted_to_queues(server):
    a = post_job(server, queue="a").json()["id"]
    b = post_job(server, queue="b").json()["id"]
    assert server.post("/want_job?queue=b").json()["id"] == b
    assert server.post("/want_job", json={"queue": "b"}).status_code == 204
    assert server.post("/want_job", json={"queue": "a"}).json()["id"] == a
    c = post_job(server, queue="c").json()["id"]
    assert server.post("/want_job", json={"queues": ["a", "b"]}).status_code == 204  # "queues" is accepted too
    assert server.post("/want_job?queues=c").json()["id"] == c


def test_block_for_waits_for_a_job_to_arrive(server):
    started = time.monotonic()
    assert server.post("/want_job", headers={"X-Accepted-Block-For": "1"}).status_code == 204
    assert time.monotonic() - started >= 0.9
    timer = threading.Timer(0.5, lambda: post_job(server))
    timer.start()
    response = server.post("/want_job", headers={"X-Accepted-Block-For": "10"})
    timer.join()
    assert response.status_code == 200 and response.json()["queue"] == "q"


def test_an_expired_lease_requeues_the_job(server):
    job_id = post_job(server).json()["id"]
    assert server.post("/want_job", headers={"X-Accepted-Timeout": "1"}).json()["id"] == job_id
    poll_until(lambda: status(server, job_id) == "queued", timeout=5)
    assert server.post("/want_job?timeout=1").json()["id"] == job_id


def test_running_update_extends_the_lease(server):
    job_id = post_job(server).json()["id"]
    server.post("/want_job", headers={"X-Accepted-Timeout": "1"})
    response = server.put(f"/jobs/{job_id}", json={"status": "running"}, headers={"X-Accepted-Timeout": "3"})
    assert response.status_code == 200
    time.sleep(1.5)
    assert status(server, job_id) == "running"


def test_running_update_without_a_timeout_renews_the_lease_taken(server):
    job_id = post_job(server).json()["id"]
    server.post("/want_job", headers={"X-Accepted-Timeout": "2"})
    time.sleep(1)
    assert server.put(f"/jobs/{job_id}", json={"status": "running"}).status_code == 200
    # Renewed for the 2 s it was taken with (not the 300 s default): back in the queue about 3 s in.
    poll_until(lambda: status(server, job_id) == "queued", timeout=6, what="the renewed lease ran out")


def test_delay_holds_the_job_back(server):
    job = post_job(server, headers={"X-Accepted-Delay": "1"}).json()
    assert job["status"] == "delayed"
    assert server.post("/want_job").status_code == 204
    taken = server.post("/want_job", headers={"X-Accepted-Block-For": "5"})
    assert taken.status_code == 200 and taken.json()["id"] == job["id"]


def test_job_timeout_fails_a_running_job(server):
    job_id = post_job(server, headers={"X-Accepted-Job-Timeout": "1"}).json()["id"]
    server.post("/want_job")
    poll_until(lambda: status(server, job_id) == "failed", timeout=5)


def test_result_ttl_removes_the_job(server):
    job_id = post_job(server, headers={"X-Accepted-Result-TTL": "1"}).json()["id"]
    server.post("/want_job")
    server.put(f"/jobs/{job_id}", json={"status": "done", "result": 1})
    poll_until(lambda: server.get(f"/jobs/{job_id}").status_code == 404, timeout=5)


def test_wait_result_long_polls_until_the_job_ends(server):
    job_id = post_job(server).json()["id"]
    server.post("/want_job")
    timer = threading.Timer(0.5, lambda: server.put(f"/jobs/{job_id}", json={"status": "done", "result": 9}))
    timer.start()
    started = time.monotonic()
    response = server.get(f"/jobs/{job_id}", headers={"X-Accepted-Wait-Result": "10"})
    timer.join()
    assert response.status_code == 200 and response.json()["status"] == "done"
    assert time.monotonic() - started < 5


def test_wait_result_returns_the_job_as_it_is_after_the_wait(server):
    job_id = post_job(server).json()["id"]
    response = server.get(f"/jobs/{job_id}", headers={"X-Accepted-Wait-Result": "1"})
    assert response.status_code == 200 and response.json()["status"] == "queued"


def test_failed_update_ends_the_job(server):
    job_id = post_job(server).json()["id"]
    server.post("/want_job")
    response = server.put(f"/jobs/{job_id}", json={"status": "failed", "result": "bad input"})
    assert response.status_code == 200 and response.json()["status"] == "failed"
    assert server.post("/want_job").status_code == 204


def test_update_with_an_unknown_status_is_refused(server):
    job_id = post_job(server).json()["id"]
    assert server.put(f"/jobs/{job_id}", json={"status": "finished"}).status_code == 400


def test_delete_cancels_and_removes(server):
    job = post_job(server).json()
    response = server.delete(f"/jobs/{job['id']}")
    assert response.status_code == 200 and response.json()["id"] == job["id"]
    assert server.get(f"/jobs/{job['id']}").status_code == 404
    assert server.post("/want_job").status_code == 204


def test_unknown_ids_are_404_with_an_error_body(server):
    for method in ("GET", "PUT", "DELETE"):
        response = server.request(method, "/jobs/nope", json={"status": "done"})
        assert response.status_code == 404 and "error" in response.json()


def test_routes_answer_with_a_trailing_slash(server):
    job_id = server.post("/jobs/", json={"queue": "q"}).json()["id"]
    assert server.get(f"/jobs/{job_id}/").status_code == 200
    assert server.post("/want_job/").status_code == 200
    assert server.put(f"/jobs/{job_id}/", json={"status": "done"}).status_code == 200
    assert server.delete(f"/jobs/{job_id}/").status_code == 200


def test_callback_receives_the_job_when_it_ends_with_retries(server):
    with Sink() as sink:
        sink.replies = [500]
        job_id = post_job(server, headers={"X-Accepted-Callback-URL": f"{sink.url}/hook"}).json()["id"]
        server.post("/want_job")
        server.put(f"/jobs/{job_id}", json={"status": "done", "result": {"x": 1}})
        poll_until(lambda: len(sink.requests) >= 2, timeout=15, what="callback retried")
        body = sink.json_bodies()[-1]
        assert body["id"] == job_id and body["status"] == "done" and body["result"] == {"x": 1}
        assert body == server.get(f"/jobs/{job_id}").json()  # the job exactly as the API shows it
        assert sink.requests[-1]["path"] == "/hook" and sink.requests[-1]["method"] == "POST"


def test_callback_fires_when_the_job_times_out(server):
    with Sink() as sink:
        headers = {"X-Accepted-Callback-URL": sink.url, "X-Accepted-Job-Timeout": "1"}
        job_id = post_job(server, headers=headers).json()["id"]
        server.post("/want_job")
        poll_until(lambda: sink.requests, timeout=10, what="callback")
        assert sink.json_bodies()[0]["id"] == job_id and sink.json_bodies()[0]["status"] == "failed"


def test_a_callback_to_a_host_not_in_http_allowed_hosts_is_refused_at_submit(cluster):
    cluster.up("--processes", "1", "--http-allowed-hosts", "localhost")
    with Sink() as sink:
        response = cluster.post("/jobs", json={"queue": "q"}, headers={"X-Accepted-Callback-URL": f"{sink.url}/hook"})
        assert response.status_code == 400
        assert "'127.0.0.1' is not in http_allowed_hosts" in response.json()["error"]
        assert cluster.get("/api/v1/jobs", params={"namespace": "accepted"}).json()["jobs"] == []
        post_job(cluster, headers={"X-Accepted-Callback-URL": sink.url.replace("127.0.0.1", "localhost")})


def test_auth_tokens_guard_every_route_but_healthz(cluster):
    cluster.tokens = []
    cluster.up("--auth-token", "s3cret", "--processes", "1")
    assert cluster.post("/jobs", json={"queue": "q"}).status_code == 401
    bearer = {"Authorization": "Bearer s3cret"}
    assert cluster.post("/jobs", json={"queue": "q"}, headers=bearer).status_code == 202
    basic = {"Authorization": "Basic " + base64.b64encode(b"anyone:s3cret").decode()}
    assert cluster.post("/want_job", headers=basic).status_code == 200
    assert cluster.post("/want_job", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert cluster.get("/healthz").status_code == 200
    head = cluster.request("HEAD", "/healthz")
    assert head.status_code == 200 and head.content == b""
    assert cluster.get("/metrics").status_code == 401
