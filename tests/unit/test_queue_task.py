"""The Queue task API's ``POST /task`` (API-NOTES section 1), against the in-memory broker."""
import calendar
import datetime
import pathlib
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # the shared fakes, whatever the import mode

from test_http_support import KINDS, FakePlugins, HttpCase  # noqa: E402

from tubeway.broker.http.base import ApiError  # noqa: E402
from tubeway.broker.http.queue_task import task_payload  # noqa: E402
from tubeway.core.errors import BrokerUnavailable  # noqa: E402
from tubeway.plugins.builtin import http_task  # noqa: E402
from tubeway.plugins.hookspecs import JobKind  # noqa: E402

URL = "http://backend.test/action"


def task(**fields):
    """A valid task body with ``fields`` changed (a value of ... removes the field)."""
    body = {"worker": "foo", "url": URL, "method": "post", "delay": 0, **fields}
    return {k: v for k, v in body.items() if v is not ...}


class QueuePlugins(FakePlugins):
    """The fake plugin manager, plus the real ``http`` kind's checks."""

    def kinds(self):
        return {**KINDS, "http": JobKind("http")}

    def validate_job(self, spec, settings):
        super().validate_job(spec, settings)
        if spec["kind"] == "http":
            http_task.validate_http_payload(spec["payload"], settings)


class QueueCase(HttpCase):
    def get_app(self):
        app = super().get_app()
        self.plugins = app.plugins = QueuePlugins()
        return app

    def post_task(self, body, path="/task"):
        return self.call_json("POST", path, body)

    def only_job(self):
        self.assertEqual(len(self.broker.jobs), 1)
        return next(iter(self.broker.jobs.values()))


class PostTaskTest(QueueCase):
    def test_a_task_is_one_http_job_in_the_workers_queue(self):
        status, body = self.post_task(task())
        self.assertEqual((status, body), (200, {"status": True}))
        job = self.only_job()
        self.assertEqual((job["namespace"], job["queue"], job["kind"]), ("queue", "foo", "http"))
        self.assertEqual(job["payload"], {"method": "POST", "url": URL})
        self.assertEqual((job["max_attempts"], job["run_at"], job["state"]), (1, None, "queued"))

    def test_the_route_answers_with_a_trailing_slash(self):
        self.assertEqual(self.post_task(task(), "/task/"), (200, {"status": True}))

    def test_every_call_field_reaches_the_payload(self):
        fields = {"headers": {"Authorization": "Bearer t"}, "json": {"param": "value"}, "timeout": 5, "sleep": 100}
        self.post_task(task(method="Put", **fields))
        self.assertEqual(self.only_job()["payload"], {"method": "PUT", "url": URL, **fields})

    def test_delay_sets_when_the_job_runs(self):
        before = time.time()
        self.post_task(task(delay=30))
        job = self.only_job()
        self.assertEqual(job["state"], "delayed")
        self.assertTrue(before + 30 <= job["run_at"] <= time.time() + 30)

    def test_a_future_datetime_is_read_as_utc(self):
        moment = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(days=2)
        self.post_task(task(delay=..., datetime=moment.strftime("%Y-%m-%d %H:%M:%S")))
        self.assertEqual(self.only_job()["run_at"], calendar.timegm(moment.timetuple()))

    def test_a_past_datetime_runs_at_once(self):
        self.post_task(task(delay=..., datetime="2019-01-01 10:00:00"))
        self.assertEqual((self.only_job()["run_at"], self.only_job()["state"]), (None, "queued"))

    def test_null_or_empty_datetime_counts_as_absent(self):
        for value in (None, ""):
            self.assertEqual(self.post_task(task(delay=5, datetime=value))[0], 200)

    def test_neither_delay_nor_datetime_runs_at_once(self):
        for fields in ({"delay": ...}, {"delay": None, "datetime": ""}, {"delay": "", "datetime": None}):
            self.broker.jobs.clear()
            self.assertEqual(self.post_task(task(**fields)), (200, {"status": True}), fields)
            self.assertEqual((self.only_job()["run_at"], self.only_job()["state"]), (None, "queued"), fields)

    def test_delay_wins_over_datetime(self):
        before = time.time()
        self.post_task(task(delay=30, datetime="2019-01-01 10:00:00"))
        self.assertTrue(before + 30 <= self.only_job()["run_at"] <= time.time() + 30)
        self.broker.jobs.clear()
        self.post_task(task(delay=0, datetime="2099-01-01 10:00:00"))
        self.assertEqual((self.only_job()["run_at"], self.only_job()["state"]), (None, "queued"))

    def test_a_datetime_that_delay_overrides_is_not_read(self):
        self.assertEqual(self.post_task(task(delay=0, datetime="tomorrow"))[0], 200)

    def test_any_method_token_is_sent_upper_cased(self):
        for method in ("action", "Purge", "m-search"):
            self.broker.jobs.clear()
            self.assertEqual(self.post_task(task(method=method))[0], 200, method)
            self.assertEqual(self.only_job()["payload"]["method"], method.upper())

    def test_unknown_fields_are_ignored(self):
        self.assertEqual(self.post_task(task(extra=1))[0], 200)


class AttemptsTest(QueueCase):
    settings_overrides = {"queue_max_attempts": 3}

    def test_attempts_come_from_queue_max_attempts(self):
        self.post_task(task())
        job = self.only_job()
        self.assertEqual(job["max_attempts"], 3)
        self.assertEqual(job["backoff"]["type"], "exponential")


class PrecedenceTest(QueueCase):
    def payload_of(self, **fields):
        self.broker.jobs.clear()
        self.assertEqual(self.post_task(task(**fields))[0], 200)
        payload = self.only_job()["payload"]
        return {k: payload[k] for k in ("json", "query_string", "body") if k in payload}

    def test_json_wins_then_query_string_then_body(self):
        everything = {"json": {"a": 1}, "query_string": {"q": "1"}, "body": "raw"}
        self.assertEqual(self.payload_of(**everything), {"json": {"a": 1}})
        self.assertEqual(self.payload_of(query_string={"q": "1"}, body="raw"), {"query_string": {"q": "1"}})
        self.assertEqual(self.payload_of(body="raw"), {"body": "raw"})

    def test_empty_parts_do_not_count(self):
        self.assertEqual(self.payload_of(json={}, query_string={"q": "1"}, body="raw"), {"query_string": {"q": "1"}})
        self.assertEqual(self.payload_of(json=None, query_string={}, body="raw"), {"body": "raw"})
        self.assertEqual(self.payload_of(json=[], query_string=None, body=""), {})

    def test_json_may_be_any_non_empty_value(self):
        for value in ([1], "text", 0, False):
            self.assertEqual(self.payload_of(json=value), {"json": value})


BAD_TASKS = [
    (task(worker=...), "'worker' is required"),
    (task(worker=""), "'worker' is required"),
    (task(worker=5), "'worker' must be a string"),
    (task(worker="w" * 201), "'worker' must be a string"),
    (task(url=...), "'url' is required"),
    (task(url=None), "'url' is required"),
    (task(method=...), "'method' is required"),
    (task(method=""), "'method' is required"),
    (task(url="ftp://backend.test/x"), "'url' must be an http or https URL"),
    (task(url="backend.test/x"), "'url' must be an http or https URL"),
    (task(url="http:///nohost"), "'url' must be an http or https URL"),
    (task(url="http://backend.test:99999/"), "'url' must be an http or https URL"),
    (task(url="http://back end.test/"), "'url' must be an http or https URL"),
    (task(url=7), "'url' must be an http or https URL"),
    (task(method="PO ST"), "'method' must be an HTTP method"),
    (task(method=1), "'method' must be an HTTP method"),
    (task(method="ACT(ION)"), "'method' must be an HTTP method"),
    (task(delay=-1), "'delay' must be an integer"),
    (task(delay=1.5), "'delay' must be an integer"),
    (task(delay="30"), "'delay' must be an integer"),
    (task(delay=True), "'delay' must be an integer"),
    (task(delay=2**40), "'delay' must be an integer"),
    (task(delay=..., datetime="2030-01-01T00:00:00"), "'datetime' must be a UTC time"),
    (task(delay=..., datetime="2030-02-30 00:00:00"), "'datetime' must be a UTC time"),
    (task(delay=..., datetime="2030-1-1 0:0:0"), "'datetime' must be a UTC time"),
    (task(delay=..., datetime=20300101), "'datetime' must be a UTC time"),
    (task(headers=["a"]), "'headers' must be an object"),
    (task(headers={"X-A": 1}), "'headers' must be an object"),
    (task(headers={"Bad Name": "v"}), "'headers' must be an object"),
    (task(headers={"X-A": "a\r\nX-B: b"}), "'headers' must be an object"),
    (task(query_string="a=1"), "'query_string' must be an object"),
    (task(query_string={"a": {"b": 1}}), "'query_string' must be an object"),
    (task(json={"a": 1}, query_string=[1]), "'query_string' must be an object"),
    (task(body={"a": 1}), "'body' must be a string"),
    (task(body=5), "'body' must be a string"),
    (task(timeout=0), "'timeout' must be a number"),
    (task(timeout="5"), "'timeout' must be a number"),
    (task(timeout=10**6), "'timeout' must be a number"),
    (task(sleep=-1), "'sleep' must be an integer"),
    (task(sleep=1.5), "'sleep' must be an integer"),
    ([task()], "the body must be a JSON object"),
    (b"\"task\"", "the body must be a JSON object"),
    (b"null", "the body must be a JSON object"),
]


class ValidationTest(QueueCase):
    def test_each_invalid_field_is_400_naming_it_and_nothing_is_stored(self):
        for body, message in BAD_TASKS:
            status, reply = self.post_task(body)
            self.assertEqual(status, 400, body)
            self.assertEqual(set(reply), {"status", "message"})
            self.assertIs(reply["status"], False)
            self.assertIn(message, reply["message"], body)
        self.assertEqual(self.broker.calls, [])

    def test_malformed_or_missing_json_is_400(self):
        for raw in (b"{", b"", b"[1,"):
            status, reply = self.call_json("POST", "/task", raw)
            self.assertEqual((status, reply["status"]), (400, False), raw)

    def test_other_methods_are_405_in_the_same_shape(self):
        status, reply = self.call_json("GET", "/task")
        self.assertEqual((status, reply["status"]), (405, False))

    def test_broker_down_is_503_in_the_same_shape(self):
        self.broker.failure = BrokerUnavailable("broker did not answer")
        status, reply = self.post_task(task())
        self.assertEqual((status, reply), (503, {"status": False, "message": "broker did not answer"}))


class AllowedHostsTest(QueueCase):
    settings_overrides = {"http_allowed_hosts": ["backend.test", "*.example.com"]}

    def test_only_allowed_hosts_are_accepted(self):
        for url in (URL, "https://api.example.com/x", "http://BACKEND.test:8080/"):
            self.assertEqual(self.post_task(task(url=url))[0], 200, url)
        for url in ("http://other.test/", "http://example.com/", "http://evil.com/.example.com"):
            status, reply = self.post_task(task(url=url))
            self.assertEqual(status, 400, url)
            self.assertIn("is not in http_allowed_hosts", reply["message"])
        self.assertEqual(len(self.broker.jobs), 3)


def test_task_payload_gives_spec_fields_and_the_call():
    settings = type("S", (), {"queue_max_attempts": 2})()
    spec, payload = task_payload(task(query_string={"a": "1"}, body="x", sleep=5), settings)
    assert spec == {"namespace": "queue", "queue": "foo", "attempts": 2, "delay": 0}
    assert payload == {"method": "POST", "url": URL, "query_string": {"a": "1"}, "sleep": 5}
    spec, _ = task_payload(task(delay=..., datetime="2019-01-01 10:00:00", min=1), settings)
    assert spec["run_at"] == calendar.timegm((2019, 1, 1, 10, 0, 0)) and "delay" not in spec
    spec, _ = task_payload(task(delay=None), settings)
    assert "delay" not in spec and "run_at" not in spec


def test_task_payload_refuses_with_a_400():
    with pytest.raises(ApiError) as caught:
        task_payload(task(worker=...), None)
    assert caught.value.status_code == 400 and caught.value.message == "'worker' is required"
