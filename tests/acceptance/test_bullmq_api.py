"""The BullMQ proxy API on real processes: add, list, get, progress and logs, validation, auth.

What taskforcesh/bullmq-proxy's controller and validator specs assert (as API-NOTES section 5
keeps them) is checked here over HTTP, against one ``tubeway up`` with an API token.
"""
import json
import os
import signal
import threading
import time
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from json_endpoint import JsonEndpoint
from twkit import module_cluster, poll_until

pytestmark = pytest.mark.acceptance

TOKEN = "bull-secret"
E2E_QUEUE = "{testQueue-e2e}"  # kept for the end-to-end scenario alone, as the original's is
BRACED_QUEUE = "{braced queue}"
JOB_JSON_KEYS = {"id", "name", "data", "opts", "progress", "returnvalue", "failedReason", "stacktrace",
                 "attemptsMade", "delay", "timestamp", "processedOn", "finishedOn", "queueQualifiedName"}


@pytest.fixture(scope="module")
def bull(xprocess, tmp_path_factory):
    """One ``tubeway up`` with an API token for the whole module."""
    with module_cluster(xprocess, tmp_path_factory.mktemp("bullmq"), TOKEN, "--processes", "1") as cluster:
        yield cluster


def q(name):
    """A queue name as a path segment: percent-encoded, as the original's clients send it."""
    return quote(name, safe="")


def add(bull, queue, jobs):
    response = bull.post(f"/queues/{q(queue)}/jobs", json=jobs)
    assert response.status_code == 200, response.text
    return response.json()


def refused(bull, queue, jobs):
    """The 400 text of adding ``jobs``."""
    response = bull.post(f"/queues/{q(queue)}/jobs", json=jobs)
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return response.text


def listing(bull, queue, **params):
    response = bull.get(f"/queues/{q(queue)}/jobs", params=params)
    assert response.status_code == 200, response.text
    return response.json()


# -- the original's controller specs ---------------------------------------------------------

def test_add_jobs_then_get_one_of_them(bull):
    [job] = add(bull, "testQueue", [{"name": "jobName", "data": "jobData"}])
    assert set(job) == JOB_JSON_KEYS
    assert (job["name"], job["data"], job["opts"], job["id"]) == ("jobName", "jobData", {}, "1")
    assert job["attemptsMade"] == 0 and job["progress"] == 0 and job["delay"] == 0
    assert job["queueQualifiedName"] == "bull:testQueue" and job["timestamp"] > 1.7e12
    assert job["processedOn"] is None and job["finishedOn"] is None and job["returnvalue"] is None
    got = bull.get(f"/queues/testQueue/jobs/{job['id']}")
    assert got.status_code == 200 and got.json() == job


def test_ids_are_numbered_per_queue_and_queue_names_are_percent_decoded(bull):
    first = add(bull, BRACED_QUEUE, [{"name": "test-job", "data": "test"}, {"name": "b", "data": {"x": [1]}}])
    assert [job["id"] for job in first] == ["1", "2"]
    assert first[0]["queueQualifiedName"] == "bull:{braced queue}"
    other = add(bull, "queue/with slash", [{"name": "a", "data": 1}])
    assert other[0]["id"] == "1" and other[0]["queueQualifiedName"] == "bull:queue/with slash"
    assert bull.get(f"/queues/{q(BRACED_QUEUE)}/jobs/2").json()["data"] == {"x": [1]}
    assert bull.get(f"/queues/{q('queue/with slash')}/jobs/1/").json()["name"] == "a"  # trailing slash too


def test_an_unknown_job_is_404_job_not_found(bull):
    for job_id in ("999999", "no-such-id", "0", "-1", "1" * 40):
        response = bull.get(f"/queues/testQueue/jobs/{job_id}")
        assert (response.status_code, response.text) == (404, "Job not found")


def test_opts_become_the_brokers_fields_and_are_read_back_as_given(bull):
    opts = {"attempts": 3, "backoff": {"type": "exponential", "delay": 1500}, "delay": 60000, "priority": 7,
            "lifo": False, "removeOnComplete": True, "removeOnFail": 10}
    [job] = add(bull, "opts-queue", [{"name": "n", "data": {"a": 1}, "opts": opts}])
    assert job["opts"] == opts and job["delay"] == 60000
    native = bull.get("/api/v1/jobs", params={"namespace": "bullmq", "queue": "opts-queue"}).json()["jobs"][0]
    assert native["priority"] == 7 and native["max_attempts"] == 3 and native["state"] == "delayed"
    assert native["backoff"] == {"type": "exponential", "delay": 1.5, "max_delay": 1e9, "jitter": False}
    assert native["keep_done"] == 0 and native["keep_failed"] == 10 and native["name"] == "n"
    assert 59 < native["run_at"] - native["created_at"] <= 60.5
    [plain] = add(bull, "opts-queue", [{"name": "m", "data": 0, "opts": {"backoff": 2000}}])
    native = bull.get("/api/v1/jobs", params={"namespace": "bullmq", "name": "m"}).json()["jobs"][0]
    assert native["backoff"]["type"] == "fixed" and native["backoff"]["delay"] == 2.0 and native["priority"] == 0


# -- the original's validator specs, and API-NOTES' messages ------------------------------------

VALIDATION = [
    ({"name": "x"}, "Body must be an array"),
    ("not an array", "Body must be an array"),
    ([{}], "name is required"),
    ([{"name": "test"}], "data is required"),
    ([{"name": "test", "data": None}], "data is required"),
    ([{"name": "", "data": 1}], "name is required"),
    (["a string job"], "name is required"),
    ([None], "name is required"),
    ([{"name": "test", "data": {}, "unexpected": True}], "Unexpected field: unexpected"),
    ([{"name": "test", "data": {}, "opts": {"invalidField": True}}], "Unexpected field: opts.invalidField"),
    ([{"name": "test", "data": {}, "opts": {"repeat": {"every": 1000}}}], "Unexpected field: opts.repeat"),
    ([{"name": "test", "data": {}, "opts": {"delay": "invalid"}}], "Invalid delay invalid"),
    ([{"name": "test", "data": {}, "opts": {"delay": -1}}], "Invalid delay -1"),
    ([{"name": "test", "data": {}, "opts": {"delay": 1.5}}], "Invalid delay 1.5"),
    ([{"name": "test", "data": {}, "opts": {"delay": 10**30}}], "Invalid delay 1e+30"),
    ([{"name": "test", "data": {}, "opts": {"priority": 0}}], "Invalid priority 0"),
    ([{"name": "test", "data": {}, "opts": {"priority": 2_097_153}}], "Invalid priority 2097153"),
    ([{"name": "test", "data": {}, "opts": {"priority": 10**40}}], "Invalid priority 1e+40"),
    ([{"name": "test", "data": {}, "opts": {"priority": None}}], "Invalid priority null"),
    ([{"name": "test", "data": {}, "opts": {"lifo": "not boolean"}}], "Invalid lifo not boolean, must be a boolean"),
    ([{"name": "test", "data": {}, "opts": {"attempts": -1}}], "Invalid attempts -1"),
    ([{"name": "test", "data": {}, "opts": {"backoff": "invalid"}}],
     "Invalid backoff invalid, must be a number or an object"),
    ([{"name": "test", "data": {}, "opts": {"backoff": -5}}], "Invalid backoff delay -5, must be greater than 0"),
    ([{"name": "test", "data": {}, "opts": {"backoff": {}}}],
     "Invalid backoff {}, must be a number or an object with at least the type field"),
    ([{"name": "test", "data": {}, "opts": {"backoff": {"type": "custom", "delay": 1000}}}],
     'Invalid backoff type custom, must be "fixed" or "exponential" if delay is provided'),
    ([{"name": "test", "data": {}, "opts": {"backoff": {"type": "custom"}}}],
     'Invalid backoff type custom, must be "fixed", "linear" or "exponential"'),
    ([{"name": "test", "data": {}, "opts": {"backoff": {"type": "fixed", "delay": "not a number"}}}],
     "Invalid backoff delay not a number, must be a number"),
    ([{"name": "test", "data": {}, "opts": {"backoff": {"type": "fixed", "delay": -1000}}}],
     "Invalid backoff delay -1000, must be greater than 0"),
    ([{"name": "test", "data": {}, "opts": {"backoff": {"type": "fixed", "jitter": 0.5}}}],
     "Unexpected field: opts.jitter"),
    ([{"name": "test", "data": {}, "opts": {"jobId": 123}}], "Invalid jobId 123, must be a string"),
    ([{"name": "test", "data": {}, "opts": {"jobId": "42"}}], "Custom Ids cannot be integers"),
    ([{"name": "test", "data": {}, "opts": "fast"}], "Invalid opts fast, must be an object"),
    ([{"name": "test", "data": {}, "opts": {"removeOnComplete": -1}}],
     "Invalid removeOnComplete -1, must be a boolean or a number of jobs to keep (0 to 1000000)"),
    ([{"name": "test", "data": {}, "opts": {"removeOnFail": {"age": 60}}}],
     "Invalid removeOnFail [object Object], must be a boolean or a number of jobs to keep (0 to 1000000)"),
    ([{"name": 5, "data": {}}], "Invalid name 5, must be a string"),
]


@pytest.mark.parametrize("body, message", VALIDATION)
def test_each_validation_message(bull, body, message):
    assert refused(bull, "validation", body) == message


def test_bodies_that_are_not_json_are_400(bull):
    for raw in (b"{nope", b"", b"[1,", "[\"\u00e9\"".encode()):
        response = bull.post("/queues/validation/jobs", data=raw)
        assert response.status_code == 400 and response.headers["Content-Type"].startswith("text/plain")


def test_queue_names_are_3_to_100_characters(bull):
    for method in ("GET", "POST"):
        short = bull.request(method, "/queues/ab/jobs", json=[{"name": "a", "data": 1}])
        assert (short.status_code, short.text) == (400, "queue name must be at least 3 characters long")
        long = bull.request(method, f"/queues/{'a' * 101}/jobs", json=[{"name": "a", "data": 1}])
        assert (long.status_code, long.text) == (400, "queue name must be at most 100 characters long")
    assert bull.get("/queues/ab/jobs/1").text == "queue name must be at least 3 characters long"
    assert add(bull, "a" * 100, [{"name": "a", "data": 1}])[0]["id"] == "1"


def test_a_bulk_add_with_one_bad_job_stores_nothing(bull):
    good = {"name": "good", "data": 1}
    assert refused(bull, "all-or-nothing", [good, good, {"name": "bad", "data": 1, "opts": {"priority": 0}}]) \
        == "Invalid priority 0"
    assert listing(bull, "all-or-nothing")["counts"] == dict.fromkeys(
        ["waiting", "active", "delayed", "prioritized", "completed", "failed"], 0)
    assert [job["id"] for job in add(bull, "all-or-nothing", [good, good])] == ["1", "2"]


def test_an_existing_job_id_returns_the_existing_job_and_adds_nothing(bull):
    first = add(bull, "idempotent", [{"name": "first", "data": 1, "opts": {"jobId": "order-7"}}])
    again = add(bull, "idempotent", [{"name": "second", "data": 2, "opts": {"jobId": "order-7"}},
                                     {"name": "third", "data": 3, "opts": {"jobId": "order-8"}},
                                     {"name": "fourth", "data": 4, "opts": {"jobId": "order-8"}}])
    assert first[0]["id"] == again[0]["id"] == "order-7"
    assert again[0]["name"] == "first" and again[0]["data"] == 1
    assert again[1]["id"] == again[2]["id"] == "order-8" and again[2]["name"] == "third"
    assert listing(bull, "idempotent")["counts"]["waiting"] == 2
    assert bull.get("/queues/idempotent/jobs/order-8").json()["data"] == 3
    # ids belong to their queue, as in BullMQ
    [elsewhere] = add(bull, "idempotent-2", [{"name": "other", "data": 5, "opts": {"jobId": "order-7"}}])
    assert elsewhere["name"] == "other"
    assert bull.get("/queues/idempotent/jobs/order-7").json()["name"] == "first"


def test_list_counts_statuses_start_and_length(bull):
    queue = "listing"
    add(bull, queue, [{"name": f"w{i}", "data": i} for i in range(5)])
    add(bull, queue, [{"name": "p", "data": 0, "opts": {"priority": 3}},
                      {"name": "d", "data": 0, "opts": {"delay": 3_600_000}}])
    page = listing(bull, queue)
    assert page["counts"] == {"waiting": 5, "active": 0, "delayed": 1, "prioritized": 1, "completed": 0,
                              "failed": 0}
    assert (page["start"], page["length"], len(page["jobs"])) == (0, 10, 7)
    assert [job["name"] for job in page["jobs"][:5]] == ["w4", "w3", "w2", "w1", "w0"]  # newest first
    assert [job["name"] for job in page["jobs"][5:]] == ["d", "p"]
    page = listing(bull, queue, statuses="prioritized,waiting", start=1, length=3)
    assert page["counts"] == {"prioritized": 1, "waiting": 5}
    assert [job["name"] for job in page["jobs"]] == ["w4", "w3", "w2"]
    assert (page["start"], page["length"]) == (1, 3)
    page = listing(bull, queue, statuses="completed", start=50, length=100)
    assert page == {"counts": {"completed": 0}, "jobs": [], "start": 50, "length": 100}
    assert listing(bull, queue, statuses="delayed")["jobs"][0]["delay"] == 3_600_000


@pytest.mark.parametrize("params, message", [
    ({"statuses": "waiting,paused"}, "Invalid status: paused"),
    ({"start": "abc"}, "Invalid start or length"),
    ({"length": "x"}, "Invalid start or length"),
    ({"start": "-1"}, "Start and length must be positive"),
    ({"length": "0"}, "Start and length must be positive"),
    ({"length": "101"}, "Length must be less than or equal to 100"),
])
def test_list_refuses_bad_queries(bull, params, message):
    response = bull.get("/queues/listing/jobs", params=params)
    assert (response.status_code, response.text) == (400, message)


def test_lifo_and_priority_are_kept_on_the_job(bull):
    jobs = add(bull, "ordering", [{"name": "fifo", "data": 1}, {"name": "lifo", "data": 2, "opts": {"lifo": True}},
                                  {"name": "urgent", "data": 3, "opts": {"priority": 1}}])
    native = {job["name"]: job for job in
              bull.get("/api/v1/jobs", params={"namespace": "bullmq", "queue": "ordering"}).json()["jobs"]}
    assert native["lifo"]["lifo"] is True and native["fifo"]["lifo"] is False
    assert native["urgent"]["priority"] == 1 and native["fifo"]["priority"] == 0
    assert [job["opts"] for job in jobs] == [{}, {"lifo": True}, {"priority": 1}]


# -- progress and logs ----------------------------------------------------------------------------

def test_progress_and_logs_with_an_api_token_and_logs_paged(bull):
    [job] = add(bull, BRACED_QUEUE, [{"name": "noted", "data": "x"}])
    base = f"/queues/{q(BRACED_QUEUE)}/jobs/{job['id']}"
    response = bull.post(f"{base}/progress", json=100)
    assert (response.status_code, response.text) == (200, "OK")
    assert bull.get(base).json()["progress"] == 100
    assert bull.post(f"{base}/progress", json={"step": 2}).text == "OK"
    assert bull.get(base).json()["progress"] == {"step": 2}
    for line in ("log1", "log2", "log3"):
        assert bull.post(f"{base}/logs", json=line).text == "OK"
    assert bull.get(f"{base}/logs").json() == {"count": 3, "logs": ["log1", "log2", "log3"]}
    assert bull.get(f"{base}/logs", params={"start": 0, "length": 2}).json() == {"count": 3, "logs": ["log1", "log2"]}
    assert bull.get(f"{base}/logs", params={"start": 2}).json() == {"count": 3, "logs": ["log3"]}


def test_progress_and_logs_refusals(bull):
    [job] = add(bull, "noting", [{"name": "n", "data": 1}])
    base = f"/queues/noting/jobs/{job['id']}"
    bad = bull.get(f"{base}/logs", params={"start": "invalid", "length": "invalid"})
    assert (bad.status_code, bad.text) == (400, "Invalid start or length")
    assert bull.post(f"{base}/progress", json="half").text == "Invalid progress half, must be a number or an object"
    assert bull.post(f"{base}/logs", json=["a"]).text == "Invalid log a, must be a string"
    missing = bull.post("/queues/noting/jobs/12345/progress", json=5)
    assert (missing.status_code, missing.text) == (404, "Job not found")
    # a Bearer that is not an API token is a lock token: this one holds no attempt of the job
    for path, body in ((f"{base}/progress", 50), (f"{base}/logs", "line")):
        stale = bull.post(path, json=body, headers={"Authorization": "Bearer not-the-lock"})
        assert (stale.status_code, stale.text) == (401, "Unauthorized")
    assert bull.get(base).json()["progress"] == 0
    reading = bull.get(f"{base}/logs", headers={"Authorization": "Bearer not-the-lock"})
    assert reading.status_code == 401  # reading logs needs an API token


# -- auth ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("POST", "/queues/authq/jobs"), ("GET", "/queues/authq/jobs"), ("GET", "/queues/authq/jobs/1"),
    ("POST", "/queues/authq/jobs/1/progress"), ("POST", "/queues/authq/jobs/1/logs"),
    ("GET", "/queues/authq/jobs/1/logs"), ("POST", "/workers"), ("GET", "/workers"), ("DELETE", "/workers/authq"),
])
def test_every_route_needs_a_token(bull, method, path):
    for headers in ({"Authorization": ""}, {"Authorization": f"Basic {TOKEN}"}):
        response = bull.request(method, path, headers=headers, json=[{"name": "a", "data": 1}])
        assert (response.status_code, response.text) == (401, "Unauthorized")
        assert response.headers["Content-Type"].startswith("text/plain")
    if method == "GET" or not path.endswith(("/progress", "/logs")):
        response = bull.request(method, path, headers={"Authorization": "Bearer wrong"}, json=[])
        assert (response.status_code, response.text) == (401, "Unauthorized")


# -- never a 500 ----------------------------------------------------------------------------------

json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                           max_leaves=8)
opt_values = st.dictionaries(st.sampled_from(["delay", "lifo", "priority", "attempts", "backoff", "jobId",
                                              "removeOnComplete", "removeOnFail", "other"]),
                             st.one_of(json_values, st.integers(-5, 3_000_000),
                                       st.fixed_dictionaries({}, optional={"type": st.sampled_from(
                                           ["fixed", "linear", "exponential", "custom"]),
                                           "delay": st.one_of(st.integers(-10, 10**6), json_values)})),
                             max_size=4)
jobs = st.one_of(json_values, st.fixed_dictionaries({"name": st.one_of(st.text(max_size=5), json_values),
                                                     "data": json_values},
                                                    optional={"opts": st.one_of(opt_values, json_values)}))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.lists(jobs, max_size=3), json_values),
       queue=st.one_of(st.text(min_size=1, max_size=12).filter(lambda s: s not in (".", "..")),
                       st.just("fuzz-queue")),
       query=st.dictionaries(st.sampled_from(["statuses", "start", "length"]), st.text(max_size=6), max_size=3))
def test_any_body_or_query_gets_an_answer_below_500(bull, body, queue, query):
    path = f"/queues/{q(queue)}/jobs"
    added = bull.post(path, json=body)
    assert added.status_code in (200, 400), added.text
    if added.status_code == 200:
        for job in added.json():
            assert set(job) == JOB_JSON_KEYS
            got = bull.get(f"{path}/{q(job['id'])}")
            assert got.status_code == 200 and got.json()["id"] == job["id"], got.text
    else:
        assert added.headers["Content-Type"].startswith("text/plain")
    listed = bull.get(path, params=query)
    assert listed.status_code in (200, 400), listed.text


# -- HTTP workers: the original's end-to-end scenario, retries, order, locks ----------------------

class Endpoint(JsonEndpoint):
    """A loopback worker endpoint: each path answers with the function registered for it; calls are recorded."""

    def __init__(self):
        self.routes, self.calls = {}, []
        self.lock = threading.Lock()
        super().__init__(self._answer)

    def _answer(self, method, path, body, headers):
        with self.lock:
            self.calls.append({"path": path, "method": method, "body": body, "headers": headers, "at": time.time()})
        return self.routes[path](body)

    def route(self, path, behave):
        """Answer ``path`` with ``behave(body) -> (status, content type, bytes)``; returns its URL."""
        self.routes[path] = behave
        return self.url(path)

    def calls_to(self, path):
        with self.lock:
            return [call for call in self.calls if call["path"] == path]


@pytest.fixture(scope="module")
def endpoint():
    server = Endpoint()
    yield server
    server.close()


def text(content, status=200):
    return status, "text/plain", content.encode()


def register(bull, queue, url, **fields):
    opts = fields.pop("opts", None)
    body = {"queue": queue, "endpoint": dict({"url": url, "method": "POST"}, **fields)}
    if opts is not None:
        body["opts"] = opts
    response = bull.post("/workers", json=body)
    assert (response.status_code, response.text) == (200, "OK")


def finished(bull, queue, job_id):
    job = bull.get(f"/queues/{q(queue)}/jobs/{q(job_id)}").json()
    return job if job["finishedOn"] is not None else None


def test_the_originals_end_to_end_scenario(bull, endpoint):
    """src/e2e-test.ts: progress and a log line from the endpoint with the lock token, then "foo bar"."""
    answers = []

    def work(body):
        job, token = body["job"], body["token"]
        assert (job["name"], job["data"], job["opts"]) == ("test-job", "test", {})
        base = f"{bull.url}/queues/{q(E2E_QUEUE)}/jobs/{job['id']}"
        headers = {"Authorization": f"Bearer {token}"}
        progress = requests.post(f"{base}/progress", data=json.dumps(100), headers=headers, timeout=10)
        logged = requests.post(f"{base}/logs", data=json.dumps("log message"), headers=headers, timeout=10)
        answers.extend([(progress.status_code, progress.text), (logged.status_code, logged.text)])
        return text("foo bar")

    url = endpoint.route("/e2e", work)
    [added] = add(bull, E2E_QUEUE, [{"name": "test-job", "data": "test"}])
    assert added["name"] == "test-job" and added["data"] == "test" and "opts" in added
    register(bull, E2E_QUEUE, url, headers={"Content-Type": "application/json"})
    job = poll_until(lambda: finished(bull, E2E_QUEUE, added["id"]), timeout=30)
    assert answers == [(200, "OK"), (200, "OK")]
    assert (job["id"], job["name"], job["data"], job["returnvalue"], job["progress"]) == \
        (added["id"], "test-job", "test", "foo bar", 100)
    assert job["attemptsMade"] == 1
    assert job["timestamp"] <= job["processedOn"] <= job["finishedOn"]
    logs = bull.get(f"/queues/{q(E2E_QUEUE)}/jobs/{added['id']}/logs")
    assert logs.status_code == 200 and logs.json() == {"count": 1, "logs": ["log message"]}
    assert bull.get("/workers").json()[E2E_QUEUE] == url
    [call] = endpoint.calls_to("/e2e")
    assert call["headers"]["Content-Type"] == "application/json" and call["method"] == "POST"
    assert set(call["body"]["job"]) == JOB_JSON_KEYS and call["body"]["job"]["queueQualifiedName"] == \
        "bull:{testQueue-e2e}"
    bull.delete(f"/workers/{q(E2E_QUEUE)}")


WORKER_VALIDATION = [
    ({}, "queue is required"),
    ({"queue": "myQueue"}, "endpoint is required"),
    ({"queue": "myQueue", "endpoint": {"url": "https://example.com", "method": "POST"}, "x": 1}, "Invalid field: x"),
    ({"queue": "ab", "endpoint": {"url": "https://example.com", "method": "PATCH"}},
     "queue name must be at least 3 characters long"),
    ({"queue": "a" * 101, "endpoint": {"url": "https://example.com", "method": "POST"}},
     "queue name must be at most 100 characters long"),
    ({"queue": "myQueue", "endpoint": {"invalidField": True}}, "url is required"),
    ({"queue": "myQueue", "endpoint": {"method": "PATCH"}}, "url is required"),
    ({"queue": "myQueue", "endpoint": {"url": "https://example.com"}}, "method is required"),
    ({"queue": "myQueue", "endpoint": {"url": "https://example.com", "method": "GET"}}, "Invalid HTTP method GET"),
    ({"queue": "myQueue", "endpoint": {"url": "https://example.com", "method": "INVALID"}},
     "Invalid HTTP method INVALID"),
    ({"queue": "myQueue", "endpoint": {"url": "htp://example.com", "method": "PUT"}}, "Invalid URL"),
    ({"queue": "myQueue", "endpoint": {"url": "not a url", "method": "POST"}}, "Invalid URL"),
    ({"queue": "myQueue", "endpoint": {"url": "https://example.com", "method": "POST", "body": 1}},
     "Invalid field: body"),
    ({"queue": "myQueue", "endpoint": {"url": "https://example.com", "method": "POST", "timeout": -1}},
     "Invalid timeout"),
    ({"queue": "myQueue", "endpoint": {"url": "https://example.com", "method": "POST"}, "opts": {"invalidField": 1}},
     "Invalid field: invalidField"),
    ({"queue": "myQueue", "endpoint": {"url": "https://example.com", "method": "POST"}, "opts": {"concurrency": -1}},
     "Invalid concurrency"),
    ({"queue": "myQueue", "endpoint": {"url": "https://example.com", "method": "POST"},
      "opts": {"limiter": {"max": 10, "duration": 1000}}}, "Unsupported worker option: limiter"),
    ([], "queue is required"),
]


@pytest.mark.parametrize("body, message", WORKER_VALIDATION)
def test_each_worker_validation_message(bull, body, message):
    response = bull.post("/workers", json=body)
    assert (response.status_code, response.text) == (400, message)


def test_workers_are_listed_replaced_and_removed(bull, endpoint):
    url = endpoint.route("/listed", lambda body: text("x"))
    register(bull, "validQueue", url, method="PUT")
    register(bull, "validQueue", url + "?v=2", opts={"concurrency": 3})
    assert bull.get("/workers").json()["validQueue"] == url + "?v=2"
    [native] = [e for e in bull.get("/api/v1/endpoints", params={"namespace": "bullmq"}).json()["endpoints"]
                if e["queue"] == "validQueue"]
    assert (native["method"], native["concurrency"], native["timeout"]) == ("POST", 3, 3.0)
    removed = bull.delete("/workers/validQueue")
    assert (removed.status_code, removed.text) == (200, "OK")
    assert "validQueue" not in bull.get("/workers").json()
    for queue in ("validQueue", "non-existing-queue"):
        missing = bull.delete(f"/workers/{queue}")
        assert (missing.status_code, missing.text) == (404, "Worker not found")


def test_failures_retry_with_each_backoff_and_exhausted_jobs_are_listed_failed(bull, endpoint):
    url = endpoint.route("/failing", lambda body: text("nope", 500))
    backoffs = {"fixed": {"type": "fixed", "delay": 400}, "linear": {"type": "linear", "delay": 300},
                "exponential": {"type": "exponential", "delay": 250}, "number": 400}
    jobs = add(bull, "retries", [{"name": name, "data": name, "opts": {"attempts": 3, "backoff": backoff}}
                                 for name, backoff in backoffs.items()])
    register(bull, "retries", url, opts={"concurrency": 4})
    for job in jobs:
        failed = poll_until(lambda: finished(bull, "retries", job["id"]), timeout=30)
        assert failed["attemptsMade"] == 3 and failed["failedReason"] == "Internal Server Error"
    expected = {"fixed": (0.4, 0.4), "linear": (0.3, 0.6), "exponential": (0.25, 0.5), "number": (0.4, 0.4)}
    for name, waits in expected.items():
        times = [call["at"] for call in endpoint.calls_to("/failing") if call["body"]["job"]["data"] == name]
        assert len(times) == 3
        gaps = [later - earlier for earlier, later in zip(times, times[1:])]
        assert all(gap >= wait - 0.01 for gap, wait in zip(gaps, waits)), (name, gaps)  # exact lower bounds
    page = listing(bull, "retries", statuses="failed,completed")
    assert page["counts"] == {"failed": 4, "completed": 0} and len(page["jobs"]) == 4


def test_priority_and_lifo_order_with_concurrency_1(bull, endpoint):
    url = endpoint.route("/order", lambda body: text(body["job"]["name"]))
    add(bull, "ordered", [{"name": "a", "data": 1}, {"name": "b", "data": 1},
                          {"name": "p2", "data": 1, "opts": {"priority": 2}},
                          {"name": "p1", "data": 1, "opts": {"priority": 1}},
                          {"name": "p3", "data": 1, "opts": {"priority": 3}},
                          {"name": "c-lifo", "data": 1, "opts": {"lifo": True}}])
    waiting = listing(bull, "ordered", statuses="prioritized")
    assert waiting["counts"]["prioritized"] == 3  # waiting for an endpoint, listed as they will be served
    assert [job["name"] for job in waiting["jobs"]] == ["p1", "p2", "p3"]
    register(bull, "ordered", url, opts={"concurrency": 1})
    poll_until(lambda: listing(bull, "ordered", statuses="completed")["counts"]["completed"] == 6, timeout=30)
    served = [call["body"]["job"]["name"] for call in endpoint.calls_to("/order")]
    assert served == ["c-lifo", "a", "b", "p1", "p2", "p3"]
    completed = listing(bull, "ordered", statuses="completed")["jobs"]
    assert [job["name"] for job in sorted(completed, key=lambda job: job["processedOn"])] == served
    assert all(job["returnvalue"] == job["name"] for job in completed)


def test_a_stale_lock_token_is_refused_while_the_current_one_writes(bull, endpoint):
    tokens, answers = [], []

    def work(body):
        job, token = body["job"], body["token"]
        tokens.append(token)
        base = f"{bull.url}/queues/locks-queue/jobs/{job['id']}"
        if len(tokens) == 1:
            return text("first attempt fails", 503)
        for used in tokens:
            reply = requests.post(f"{base}/progress", data=json.dumps(len(answers) + 1),
                                  headers={"Authorization": f"Bearer {used}"}, timeout=10)
            answers.append((reply.status_code, reply.text))
        return 200, "application/json", b'{"ok": true}'

    url = endpoint.route("/locks", work)
    [job] = add(bull, "locks-queue", [{"name": "locked", "data": 1, "opts": {"attempts": 2}}])
    register(bull, "locks-queue", url)
    done = poll_until(lambda: finished(bull, "locks-queue", job["id"]), timeout=30)
    assert answers == [(401, "Unauthorized"), (200, "OK")] and tokens[0] != tokens[1]
    assert (done["returnvalue"], done["progress"], done["attemptsMade"]) == ({"ok": True}, 2, 2)
    after = bull.post(f"/queues/locks-queue/jobs/{job['id']}/logs", json="late",
                      headers={"Authorization": f"Bearer {tokens[1]}"})
    assert (after.status_code, after.text) == (401, "Unauthorized")  # its attempt no longer holds the job


def test_a_timeout_fails_the_attempt_and_a_delayed_job_waits_its_delay(bull, endpoint):
    slow = endpoint.route("/slow", lambda body: (time.sleep(1.5), text("late"))[1])
    [job] = add(bull, "slow-queue", [{"name": "slow", "data": 1}])
    register(bull, "slow-queue", slow, timeout=300)
    failed = poll_until(lambda: finished(bull, "slow-queue", job["id"]), timeout=30)
    assert failed["returnvalue"] is None and "timed out" in failed["failedReason"]
    quick = endpoint.route("/quick", lambda body: text("done"))
    register(bull, "later-queue", quick)
    [delayed] = add(bull, "later-queue", [{"name": "later", "data": 1, "opts": {"delay": 1200}}])
    assert listing(bull, "later-queue", statuses="delayed")["counts"]["delayed"] == 1
    done = poll_until(lambda: finished(bull, "later-queue", delayed["id"]), timeout=30)
    assert done["processedOn"] - done["timestamp"] >= 1200 and done["delay"] == 1200


def test_a_worker_survives_a_kill_9_and_restart_and_jobs_added_meanwhile_flow(cluster):
    server = Endpoint()
    try:
        url = server.route("/durable", lambda body: text("kept"))
        cluster.tokens = [TOKEN]
        first = cluster.up("--auth-token", TOKEN, "--processes", "1")
        register(cluster, "durable", url, opts={"concurrency": 2})
        os.killpg(cluster.pid(first), signal.SIGKILL)
        poll_until(lambda: not cluster.healthy(), what="the group gone")
        cluster.up("--auth-token", TOKEN, "--processes", "1")
        assert cluster.get("/workers").json() == {"durable": url}
        [job] = add(cluster, "durable", [{"name": "after", "data": 1}])
        assert poll_until(lambda: finished(cluster, "durable", job["id"]), timeout=30)["returnvalue"] == "kept"
    finally:
        server.close()


worker_bodies = st.one_of(json_values, st.fixed_dictionaries(
    {"queue": st.one_of(st.just("fuzz-workers"), json_values),
     "endpoint": st.one_of(json_values, st.fixed_dictionaries({}, optional={
         "url": st.one_of(st.just("http://127.0.0.1:9/x"), st.text(max_size=10), json_values),
         "method": st.one_of(st.sampled_from(["POST", "put", "GET"]), json_values),
         "headers": json_values, "timeout": st.one_of(st.integers(-5, 10**9), json_values)}))},
    optional={"opts": st.one_of(json_values, st.dictionaries(
        st.sampled_from(["concurrency", "limiter", "other"]), st.one_of(st.integers(-2, 20_000), json_values),
        max_size=2))}))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=worker_bodies)
def test_any_worker_body_gets_ok_or_a_plain_400(bull, body):
    response = bull.post("/workers", json=body)
    assert (response.status_code, response.text) == (200, "OK") or response.status_code == 400, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    bull.delete("/workers/fuzz-workers")
