"""The Queue task API's ``POST /fraction`` against real processes and a recording sink."""
import json
import time
from urllib.parse import parse_qs, urlparse

import pytest

from sink import Sink
from twkit import poll_until

pytestmark = pytest.mark.acceptance


def post_fraction(server, worker="frac", **fields):
    body = {"worker": worker, "method": "post", "delay": 0, **fields}
    return server.post("/fraction", json=body)


def fraction_job(server, worker="frac"):
    jobs = server.get("/api/v1/jobs", params={"namespace": "queue", "queue": worker, "limit": 1}).json()["jobs"]
    assert jobs and jobs[0]["kind"] == "fraction"
    return jobs[0]


def ended(server, worker="frac"):
    job = fraction_job(server, worker)
    return job if job["state"] in ("done", "failed") else None


def json_ranges(sink):
    return sorted((body["_min"], body["_max"], body["_gap"]) for body in sink.json_bodies())


def test_the_documents_example_calls_9991_exact_ranges(server):
    with Sink() as sink:
        response = post_fraction(server, url=f"{sink.url}/action1", json={"param": "value"},
                                 headers={"Authorization": "Bearer t"}, min=1000, max=1000000, gap=100)
        assert response.status_code == 200 and response.json() == {"status": True}
        job = poll_until(lambda: ended(server), timeout=120, what="fraction done")
        assert job["state"] == "done"
        assert job["progress"] == {"done": 9991, "failed": 0, "total": 9991}
        ranges = json_ranges(sink)
        assert len(ranges) == 9991
        assert ranges[0] == (1000, 1099, 100) and ranges[-1] == (1000000, 1000000, 100)
        assert all(b + 1 == c for (_, b, _), (c, _, _) in zip(ranges, ranges[1:]))
        assert all(body["param"] == "value" for body in sink.json_bodies())
        assert {r["headers"]["Authorization"] for r in sink.requests} == {"Bearer t"}


def test_uneven_ranges_from_zero_go_into_the_query_string_of_a_get(server):
    with Sink() as sink:
        response = post_fraction(server, url=f"{sink.url}/list?", method="get", query_string={"kind": "a"},
                                 min=0, max=25, gap=10)
        assert response.status_code == 200
        poll_until(lambda: ended(server), timeout=30, what="fraction done")
        queries = [parse_qs(urlparse(r["path"]).query) for r in sink.requests]
        got = sorted((int(q["_min"][0]), int(q["_max"][0])) for q in queries)
        assert got == [(0, 9), (10, 19), (20, 25)]
        assert all(q["kind"] == ["a"] and q["_gap"] == ["10"] for q in queries)
        assert {r["method"] for r in sink.requests} == {"GET"}


def test_the_fraction_is_the_one_job_of_kind_fraction_and_its_leaves_name_it(server):
    with Sink() as sink:
        assert post_fraction(server, url=sink.url, min=0, max=999, gap=10).status_code == 200
        job = poll_until(lambda: ended(server), timeout=60, what="fraction done")
        assert job["state"] == "done" and job["parent"] is None

        def listed(kind):
            params = {"namespace": "queue", "queue": "frac", "kind": kind, "limit": 1000}
            return server.get("/api/v1/jobs", params=params).json()["jobs"]
        assert [j["id"] for j in listed("fraction")] == [job["id"]]
        assert listed("fraction.step") and all(j["parent"] is None for j in listed("fraction.step"))
        leaves = listed("http")
        assert len(leaves) == 100 and {j["parent"] for j in leaves} == {job["id"]}


def test_cancelling_a_fraction_stops_its_calls(server):
    with Sink() as sink:
        sink.delay = 0.2
        assert post_fraction(server, url=sink.url, min=0, max=9999, gap=10).status_code == 200
        poll_until(lambda: sink.requests, what="the first leaf call")
        fraction_id = fraction_job(server)["id"]
        assert server.post(f"/api/v1/jobs/{fraction_id}/cancel").json()["state"] == "cancelled"
        params = {"namespace": "queue", "queue": "frac", "limit": 1000}
        for state in ("queued", "delayed", "running"):
            assert server.get("/api/v1/jobs", params={**params, "state": state}).json()["jobs"] == []
        time.sleep(1.0)  # calls in flight at the cancel end within the sink's delay
        calls = len(sink.requests)
        time.sleep(1.0)
        assert len(sink.requests) == calls < 1000  # no call after that: the other leaves never ran


def test_a_leaf_out_of_attempts_fails_the_fraction(server):
    with Sink() as sink:
        sink.replies = [500]
        assert post_fraction(server, url=sink.url, min=0, max=29, gap=10).status_code == 200
        job = poll_until(lambda: ended(server), timeout=30, what="fraction ended")
        assert job["state"] == "failed" and job["progress"]["failed"] == 1
        poll_until(lambda: fraction_job(server)["progress"]["done"] == 2, what="other leaves counted")


@pytest.mark.parametrize("fields,named", [
    ({"min": 0, "max": 100, "gap": 9}, "gap"),
    ({"min": 10, "max": 5, "gap": 10}, "min"),
    ({"max": 100, "gap": 10}, "min"),
    ({"min": 0, "max": "100", "gap": 10}, "max"),
    ({"min": -5, "max": 100, "gap": 10}, "min"),
    ({"min": 0, "max": 100}, "gap"),
    ({"min": 0, "max": 100, "gap": 10, "json": [1, 2]}, "json"),
    ({"min": 0, "max": 100, "gap": 10, "json": "text"}, "json"),
])
def test_bad_ranges_are_400_naming_the_field_and_store_nothing(server, fields, named):
    response = post_fraction(server, url="http://127.0.0.1:9/x", **fields)
    assert response.status_code == 400
    assert response.json()["status"] is False and named in response.json()["message"]
    assert server.get("/api/v1/jobs", params={"namespace": "queue"}).json()["jobs"] == []


def test_a_fraction_checks_its_task_like_a_task(server):
    response = post_fraction(server, url="ftp://example.com/x", min=0, max=100, gap=10)
    assert response.status_code == 400 and "url" in response.json()["message"]
    response = post_fraction(server, url="http://127.0.0.1:9/x", min=0, max=100, gap=10, delay=-1)
    assert response.status_code == 400 and "'delay'" in response.json()["message"]
    assert json.loads(response.text)["status"] is False
