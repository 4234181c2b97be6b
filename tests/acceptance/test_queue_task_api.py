"""The Queue task API's ``POST /task`` against real processes and a recording sink (API-NOTES section 1)."""
import datetime
import json
import time

import pytest

from sink import Sink
from twkit import poll_until

pytestmark = pytest.mark.acceptance


def post_task(server, path="/task", **fields):
    body = {"worker": "foo", "method": "post", "delay": 0, **fields}
    response = server.post(path, json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": True}
    return response


def queue_jobs(server, worker="foo"):
    response = server.get("/api/v1/jobs", params={"namespace": "queue", "queue": worker})
    assert response.status_code == 200, response.text
    return response.json()["jobs"]


def ended_job(server, worker="foo", timeout=15):
    """The worker's only job, once it has ended."""
    def ended():
        jobs = queue_jobs(server, worker)
        return jobs[0] if len(jobs) == 1 and jobs[0]["state"] in ("done", "failed") else None
    return poll_until(ended, timeout=timeout, what=f"the job of worker {worker} ended")


def received(sink, count=1, timeout=15):
    poll_until(lambda: len(sink.requests) >= count, timeout=timeout, what=f"{count} request(s) at the sink")
    return sink.requests


def utc_in(seconds):
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def test_a_task_posts_json_with_its_headers(server):
    with Sink() as sink:
        post_task(server, url=f"{sink.url}/action1", headers={"Authorization": "Bearer my_token"},
                  json={"param": "value"}, query_string={"ignored": "1"}, body="ignored")
        request = received(sink)[0]
        assert (request["method"], request["path"]) == ("POST", "/action1")
        assert json.loads(request["body"]) == {"param": "value"}
        assert request["headers"]["Content-Type"] == "application/json"
        assert request["headers"]["Authorization"] == "Bearer my_token"
        job = ended_job(server)
        assert (job["state"], job["kind"], job["attempts"], job["max_attempts"]) == ("done", "http", 1, 1)
        assert job["result"]["status"] == 200 and job["result"]["body"] == "{}"
        assert job["result"]["headers"]["Content-Type"] == "application/json"
        assert job["result"]["truncated"] is False and job["result"]["duration"] >= 0


def test_a_redirect_is_followed_and_the_last_answer_kept(server):
    with Sink() as sink:
        sink.replies.append((302, {"Location": "/moved?to=here"}))
        post_task(server, url=f"{sink.url}/old", json={"a": 1})
        requests = received(sink, count=2)
        assert [(r["method"], r["path"]) for r in requests] == [("POST", "/old"), ("GET", "/moved?to=here")]
        job = ended_job(server)
        assert (job["state"], job["result"]["status"]) == ("done", 200)


def test_query_string_is_a_form_body_for_post(server):
    with Sink() as sink:
        post_task(server, url=sink.url + "/form?", query_string={"param": "value", "n": 2}, body="ignored")
        request = received(sink)[0]
        assert request["path"] == "/form" and request["body"] == b"param=value&n=2"
        assert request["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_query_string_goes_in_the_url_for_get_and_head(server):
    with Sink() as sink:
        post_task(server, worker="bar", method="get", url=sink.url + "/action2?", query_string={"param": "value"},
                  delay=None, datetime="2019-01-01 10:00:00")
        assert received(sink)[0]["path"] == "/action2?param=value"
        assert received(sink)[0]["method"] == "GET" and received(sink)[0]["body"] == b""
        post_task(server, worker="bar", method="HeAd", url=sink.url + "/h?x=1&", query_string={"a": ["1", "2"]})
        request = received(sink, 2)[1]
        assert (request["method"], request["path"]) == ("HEAD", "/h?x=1&a=1&a=2")


def test_a_raw_body_with_any_method_case_and_sleep(server):
    with Sink() as sink:
        post_task(server, worker="baz", method="pAtCh", url=sink.url + "/action3", body="raw body", sleep=100)
        request = received(sink)[0]
        assert (request["method"], request["body"]) == ("PATCH", b"raw body")
        job = ended_job(server, "baz")
        assert job["state"] == "done"
        assert job["payload"] == {"method": "PATCH", "url": sink.url + "/action3", "body": "raw body", "sleep": 100}


def test_a_trailing_slash_is_accepted(server):
    with Sink() as sink:
        post_task(server, path="/task/", url=sink.url)
        received(sink)


def test_delay_holds_the_task_back(server):
    with Sink() as sink:
        started = time.monotonic()
        post_task(server, url=sink.url, delay=2)
        assert queue_jobs(server)[0]["state"] == "delayed"
        received(sink)
        assert time.monotonic() - started >= 1.9
        assert ended_job(server)["state"] == "done"


def test_a_future_datetime_holds_the_task_back(server):
    with Sink() as sink:
        started = time.monotonic()
        post_task(server, url=sink.url, delay=None, datetime=utc_in(3))
        assert queue_jobs(server)[0]["state"] == "delayed"
        received(sink)
        assert time.monotonic() - started >= 1.9  # whole seconds: due between 2 and 3 s from now


def test_a_past_datetime_runs_at_once(server):
    with Sink() as sink:
        started = time.monotonic()
        post_task(server, url=sink.url, delay="", datetime="2000-01-01 00:00:00")
        received(sink)
        assert time.monotonic() - started < 2


def test_a_task_without_delay_or_datetime_is_called_at_once(server):
    with Sink() as sink:
        response = server.post("/task", json={"worker": "mailer", "method": "post", "url": sink.url + "/send",
                                              "json": {"to": "a@example.com"}})
        assert (response.status_code, response.json()) == (200, {"status": True})
        request = received(sink)[0]
        assert (request["method"], request["path"]) == ("POST", "/send")
        assert json.loads(request["body"]) == {"to": "a@example.com"}
        assert ended_job(server, "mailer")["state"] == "done"


def test_delay_wins_over_datetime(server):
    with Sink() as sink:
        post_task(server, url=sink.url + "/now", delay=0, datetime="2099-01-01 00:00:00")
        assert received(sink)[0]["path"] == "/now"
        assert ended_job(server)["state"] == "done"


def test_a_custom_method_arrives_upper_cased(server):
    with Sink() as sink:
        post_task(server, worker="box", method="action", url=sink.url + "/box", json={"id": 7})
        request = received(sink)[0]
        assert (request["method"], request["path"], json.loads(request["body"])) == ("ACTION", "/box", {"id": 7})
        assert ended_job(server, "box")["payload"]["method"] == "ACTION"


def test_a_5xx_is_retried_up_to_queue_max_attempts(cluster):
    cluster.up("--processes", "1", "--queue-max-attempts", "3")
    with Sink() as sink:
        sink.replies = [500]
        post_task(cluster, url=sink.url + "/flaky")
        job = ended_job(cluster)
        assert (job["state"], job["attempts"], job["max_attempts"]) == ("done", 2, 3)
        assert [r["path"] for r in sink.requests] == ["/flaky", "/flaky"]
        assert job["result"]["status"] == 200


def test_a_5xx_fails_the_task_by_default_and_keeps_it(server):
    with Sink() as sink:
        sink.replies = [503]
        post_task(server, url=sink.url)
        job = ended_job(server)
        assert (job["state"], job["attempts"]) == ("failed", 1)
        assert "HTTP 503" in job["error"]
        assert len(sink.requests) == 1


def test_a_4xx_answer_is_done_and_not_retried(cluster):
    cluster.up("--processes", "1", "--queue-max-attempts", "3")
    with Sink() as sink:
        sink.replies = [404]
        post_task(cluster, url=sink.url)
        job = ended_job(cluster)
        assert (job["state"], job["attempts"], job["result"]["status"]) == ("done", 1, 404)
        time.sleep(0.5)
        assert len(sink.requests) == 1


def test_a_slow_answer_times_out(server):
    with Sink() as sink:
        sink.delay = 4
        started = time.monotonic()
        post_task(server, url=sink.url, timeout=1)
        job = ended_job(server)
        assert job["state"] == "failed" and "timed out" in job["error"]
        assert time.monotonic() - started < 4


def test_an_unreachable_url_fails_the_task(server, free_port):
    post_task(server, url=f"http://127.0.0.1:{free_port()}/nothing")
    job = ended_job(server)
    assert job["state"] == "failed" and "ConnectionError" in job["error"]


BAD_TASKS = [
    ({"worker": None}, "'worker' is required"),
    ({"url": None}, "'url' is required"),
    ({"method": None}, "'method' is required"),
    ({"url": "ftp://127.0.0.1/x"}, "'url' must be an http or https URL"),
    ({"url": "not a url"}, "'url' must be an http or https URL"),
    ({"url": "http://[zz]/"}, "'url' must be an http or https URL"),
    ({"url": "http://[::1:9/x"}, "'url' must be an http or https URL"),
    ({"method": "GE T"}, "'method' must be an HTTP method"),
    ({"headers": "Authorization: x"}, "'headers' must be an object"),
    ({"headers": {"X-A": 1}}, "'headers' must be an object"),
    ({"delay": -5}, "'delay' must be an integer"),
    ({"delay": "soon"}, "'delay' must be an integer"),
    ({"delay": None, "datetime": "tomorrow"}, "'datetime' must be a UTC time written YYYY-MM-DD HH:MM:SS"),
    ({"query_string": ["a"]}, "'query_string' must be an object"),
    ({"body": {"a": 1}}, "'body' must be a string"),
    ({"timeout": 0}, "'timeout' must be a number"),
    ({"sleep": "100"}, "'sleep' must be an integer"),
]


def test_every_invalid_field_is_400_naming_it_and_nothing_is_stored(server):
    for fields, message in BAD_TASKS:
        body = {"worker": "foo", "url": "http://127.0.0.1:9/x", "method": "post", "delay": 0, **fields}
        response = server.post("/task", json={k: v for k, v in body.items() if v is not None})
        assert response.status_code == 400, (fields, response.text)
        assert response.json()["status"] is False
        assert message in response.json()["message"], (fields, response.json())
    for raw in (b"{", b"[1]", b"null"):
        response = server.post("/task", data=raw)
        assert response.status_code == 400 and response.json()["status"] is False
    assert server.get("/api/v1/jobs", params={"namespace": "queue"}).json()["jobs"] == []


def test_http_allowed_hosts_restricts_targets(cluster):
    cluster.up("--processes", "1", "--http-allowed-hosts", "localhost,*.example.com")
    with Sink() as sink:
        response = cluster.post("/task", json={"worker": "foo", "url": sink.url, "method": "get", "delay": 0})
        assert response.status_code == 400
        assert response.json() == {"status": False, "message": "'url' host '127.0.0.1' is not in http_allowed_hosts"}
        assert queue_jobs(cluster) == []
        port = sink.url.rsplit(":", 1)[1]
        post_task(cluster, url=f"http://localhost:{port}/ok")
        assert received(sink)[0]["path"] == "/ok"
        assert ended_job(cluster)["state"] == "done"
