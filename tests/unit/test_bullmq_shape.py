"""The BullMQ dialect's pure parts (bullmq_checks, bullmq_shape): JavaScript-worded messages, specs, JobJson, ids."""
import pytest

from tubeway.broker.http import bullmq_checks as checks
from tubeway.broker.http import bullmq_shape as shape
from tubeway.core.job import normalize_spec


@pytest.mark.parametrize("value, text", [
    (None, "null"), (True, "true"), (3, "3"), (3.0, "3"), (1.5, "1.5"), (1e30, "1e+30"), ("x", "x"),
    ([1, None, "a"], "1,,a"), ({}, "[object Object]"),
])
def test_values_read_as_javascript_writes_them(value, text):
    assert checks.js(value) == text


@pytest.mark.parametrize("text, number", [("12", 12), (" 7abc", 7), ("-3", -3), ("1e3", 1), ("abc", None),
                                          ("", None), ("+", None)])
def test_parse_int_is_javascripts(text, number):
    assert checks.parse_int(text) == number


def test_a_job_becomes_a_broker_spec_the_job_model_takes():
    job = {"name": "n", "data": [1], "opts": {"priority": 5, "lifo": True, "attempts": 4, "delay": 1500,
                                              "backoff": {"type": "linear", "delay": 250}, "jobId": "abc",
                                              "removeOnComplete": {"count": 3}, "removeOnFail": False}}
    checks.check_job(job, "my-queue")
    spec = normalize_spec(shape.job_spec(job, "my-queue", "external"), now=100.0)
    assert (spec["priority"], spec["lifo"], spec["max_attempts"], spec["run_at"]) == (5, True, 4, 101.5)
    assert spec["backoff"] == {"type": "linear", "delay": 0.25, "max_delay": 1e9, "jitter": False}
    assert spec["unique_key"] == "8:my-queue:abc" and spec["keep_done"] == 3 and spec["keep_failed"] is None
    assert spec["payload"] == {"data": [1], "opts": job["opts"]} and spec["namespace"] == "bullmq"


def test_job_json_times_are_milliseconds_and_ids_bullmqs():
    record = {"id": "x", "queue": "qq", "sequence": 9, "name": "n", "payload": {"data": 1, "opts": {"delay": 5}},
              "state": "failed", "error": "boom", "attempts": 2, "created_at": 1.5, "started_at": 2.25,
              "finished_at": 3.0, "progress": None, "result": None}
    job = shape.job_json(record)
    assert (job["id"], job["timestamp"], job["processedOn"], job["finishedOn"]) == ("9", 1500, 2250, 3000)
    assert (job["failedReason"], job["stacktrace"], job["attemptsMade"], job["delay"]) == ("boom", ["boom"], 2, 5)
    assert shape.job_json(dict(record, unique_key=checks.unique_key("qq", "a:b")))["id"] == "a:b"
    assert shape.job_json(dict(record, state="running"))["finishedOn"] is None


def test_the_longest_job_id_fits_the_brokers_unique_key():
    queue = "q" * 100
    longest = "i" * checks.max_job_id(queue)
    checks.check_opts({"jobId": longest}, queue)
    normalize_spec({"kind": "k", "unique_key": checks.unique_key(queue, longest)})
    with pytest.raises(checks.BullError):
        checks.check_opts({"jobId": longest + "i"}, queue)


def test_the_push_body_is_bullmqs_for_its_namespace_only():
    record = {"id": "x", "namespace": "bullmq", "queue": "qq", "sequence": 3, "name": "n",
              "payload": {"data": 1, "opts": {}}, "state": "running", "attempts": 1, "created_at": 1.0,
              "started_at": 2.0, "lock": "secret"}
    body = shape.tubeway_push_body(record)
    assert body["token"] == "secret" and body["job"]["id"] == "3" and body["job"]["finishedOn"] is None
    assert shape.tubeway_push_body(dict(record, namespace="default")) is None


def test_worker_registrations_become_the_brokers_endpoint_arguments():
    worker = checks.check_worker({"queue": "myQueue", "endpoint": {"url": "http://example.com", "method": "patch",
                                                                  "timeout": 1500}, "opts": {"concurrency": 4}})
    assert worker == {"queue": "myQueue", "url": "http://example.com", "method": "PATCH", "headers": {},
                      "timeout": 1.5, "concurrency": 4}
