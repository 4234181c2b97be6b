"""The ``http`` job kind of the built-in ``callback`` plugin: checks, the call, its result (no sockets)."""
import io
import time
from types import SimpleNamespace

import pytest
import requests

from tubeway.core.errors import ValidationError
from tubeway.plugins.builtin import http_call, http_client, http_task
from tubeway.plugins.manager import PluginManager
from tubeway.workers.executor import JobContext, execute_job

URL = "http://backend.test/action"


def settings(**values):
    return SimpleNamespace(**{"plugins": ["callback"], "queue_default_timeout": 30.0, **values})


def http_job(payload, timeout=None):
    return {"id": "j1", "kind": "http", "payload": payload, "attempts": 1, "max_attempts": 3, "timeout": timeout}


class FakeAdapter(requests.adapters.BaseAdapter):
    """Answers every request with a fixed status and body, remembering the requests."""

    def __init__(self, status=200, body=b"{}", error=None, headers=None):
        super().__init__()
        self.status, self.body, self.error, self.requests = status, body, error, []
        self.headers = headers or {"Content-Type": "application/json"}

    def send(self, request, **kwargs):
        self.requests.append((request, kwargs))
        if self.error:
            raise self.error
        response = requests.Response()
        response.status_code, response.reason = self.status, "Reason"
        response.raw, response.url, response.request = io.BytesIO(self.body), request.url, request
        response.headers = requests.structures.CaseInsensitiveDict(self.headers)
        return response

    def close(self):
        pass


@pytest.fixture
def fake_http(monkeypatch):
    def install(**kwargs):
        adapter = FakeAdapter(**kwargs)
        client = http_client._new_session()
        client.mount("http://", adapter)
        monkeypatch.setattr(http_client, "session", lambda: client)
        return adapter
    return install


def run(payload, config=None, timeout=None):
    config = config or settings()
    pm = PluginManager.load(config)
    job = http_job(payload, timeout)
    return execute_job(pm, job, JobContext(job, config))


# The kind and its checks.

def test_the_callback_plugin_declares_http_and_callback():
    pm = PluginManager.load(settings())
    assert set(pm.kinds()) == {"http", "callback"}
    assert pm.owner("http") == "callback" and pm.kinds()["http"].runs_on_workers
    assert pm.kinds()["http"].concurrency == 16 and pm.kinds()["callback"].concurrency is None


def test_http_concurrency_sets_the_kinds_threads():
    assert PluginManager.load(settings(http_concurrency=40)).kinds()["http"].concurrency == 40


GOOD = [
    {"method": "GET", "url": URL},
    {"method": "patch", "url": "https://backend.test:8443/x?y=1#z", "headers": {"X-A": "1"}, "json": [1]},
    {"method": "POST", "url": URL, "query_string": {"a": [1, "b", None, True, 1.5]}, "body": "", "json": None},
    {"method": "PUT", "url": "http://[::1]:8080/", "body": "raw", "timeout": 0.5, "sleep": 0},
]
BAD = [
    ("x", "payload"), ({"url": URL}, "method"), ({"method": "GET"}, "url"),
    ({"method": "GET", "url": URL, "other": 1}, "other"),
    ({"method": "G ET", "url": URL}, "method"), ({"method": "GET", "url": "file:///etc/passwd"}, "url"),
    ({"method": "GET", "url": "http://"}, "url"), ({"method": "GET", "url": "http://x:port/"}, "url"),
    ({"method": "GET", "url": "http://[zz]/"}, "url"), ({"method": "GET", "url": "http://[::1:80/x"}, "url"),
    ({"method": "GET", "url": "http:///x"}, "url"), ({"method": "GET", "url": "http://a:b@/"}, "url"),
    ({"method": "GET", "url": URL, "headers": {"X": None}}, "headers"),
    ({"method": "GET", "url": URL, "query_string": {"a": float("nan")}}, "query_string"),
    ({"method": "GET", "url": URL, "body": 3}, "body"),
    ({"method": "GET", "url": URL, "timeout": -1}, "timeout"),
    ({"method": "GET", "url": URL, "timeout": True}, "timeout"),
    ({"method": "GET", "url": URL, "sleep": 2.5}, "sleep"), ({"method": "GET", "url": URL, "sleep": 10**12}, "sleep"),
]


@pytest.mark.parametrize("payload", GOOD)
def test_good_payloads_are_accepted(payload):
    PluginManager.load(settings()).validate_job({"kind": "http", "payload": payload}, settings())


@pytest.mark.parametrize("payload,field", BAD)
def test_bad_payloads_are_refused_naming_the_field(payload, field):
    with pytest.raises(ValidationError) as caught:
        PluginManager.load(settings()).validate_job({"kind": "http", "payload": payload}, settings())
    assert caught.value.field == field
    if field != "payload":
        assert f"'{field}'" in caught.value.message


@pytest.mark.parametrize("host,allowed", [
    ("backend.test", True), ("BACKEND.test", True), ("a.example.com", True), ("a.b.example.com", True),
    ("example.com", False), ("badexample.com", False), ("other.test", False), ("::1", True),
])
def test_allowed_hosts_match_names_and_subdomain_patterns(host, allowed):
    assert http_task.host_allowed(host, ["backend.test", "*.example.com", "[::1]"]) is allowed
    assert http_task.host_allowed(host, []) is True


def test_validation_applies_http_allowed_hosts():
    config = settings(http_allowed_hosts=["*.example.com"])
    pm = PluginManager.load(config)
    pm.validate_job({"kind": "http", "payload": {"method": "GET", "url": "http://api.example.com/"}}, config)
    with pytest.raises(ValidationError, match="'url' host 'backend.test' is not in http_allowed_hosts"):
        pm.validate_job({"kind": "http", "payload": {"method": "GET", "url": URL}}, config)


# Building the request.

@pytest.mark.parametrize("url,expected", [
    ("http://h/p", "http://h/p?a=1"), ("http://h/p?", "http://h/p?a=1"), ("http://h/p?x=2&", "http://h/p?x=2&a=1"),
    ("http://h/p?x=2", "http://h/p?x=2&a=1"), ("http://h/p?#top", "http://h/p?a=1#top"),
])
def test_with_query_trims_a_trailing_question_mark_or_ampersand(url, expected):
    assert http_call.with_query(url, "a=1") == expected


def test_encode_query_writes_json_scalars_and_repeats_arrays():
    query = {"s": "a b", "n": 3, "f": 1.5, "t": True, "z": None, "l": ["x", 2]}
    assert http_call.encode_query(query) == "s=a+b&n=3&f=1.5&t=true&z=&l=x&l=2"


@pytest.mark.parametrize("method", ["get", "GET", "Head"])
def test_query_string_goes_in_the_url_for_get_and_head(method):
    parts = http_call.request_parts({"method": method, "url": URL + "?", "query_string": {"a": "1"}, "body": "x"})
    assert parts[:2] == (method.upper(), URL + "?a=1") and parts[3:] == (None, None)


def test_query_string_is_a_form_body_otherwise():
    method, url, headers, data, json_value = http_call.request_parts(
        {"method": "post", "url": URL, "query_string": {"a": "1", "b": "x&y"}})
    assert (method, url, data, json_value) == ("POST", URL, b"a=1&b=x%26y", None)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    _, _, headers, _, _ = http_call.request_parts(
        {"method": "post", "url": URL, "query_string": {"a": "1"}, "headers": {"content-type": "text/plain"}})
    assert headers["Content-Type"] == "text/plain" and len(headers) == 1


def test_json_wins_over_the_others_and_body_is_raw():
    parts = http_call.request_parts({"method": "GET", "url": URL, "json": {"j": 1}, "query_string": {"a": 1}})
    assert parts[1] == URL and parts[3:] == (None, {"j": 1})
    parts = http_call.request_parts({"method": "DELETE", "url": URL, "body": "é raw", "query_string": {}})
    assert parts[3:] == ("é raw".encode(), None)


# Running a job.

def test_a_call_records_status_headers_body_and_duration(fake_http):
    adapter = fake_http(status=201, body=b'{"ok": true}', headers={"Content-Type": "application/json", "X-B": "2"})
    payload = {"method": "post", "url": URL, "headers": {"Authorization": "Bearer t"}, "json": {"param": "value"}}
    outcome = run(payload)
    assert outcome["state"] == "done", outcome
    result = outcome["result"]
    assert (result["status"], result["body"], result["truncated"]) == (201, '{"ok": true}', False)
    assert result["headers"]["X-B"] == "2" and result["duration"] >= 0
    request, kwargs = adapter.requests[0]
    assert request.method == "POST" and request.body == b'{"param":"value"}'
    assert request.headers["Content-Type"] == "application/json" and request.headers["Authorization"] == "Bearer t"
    assert kwargs["timeout"] == 30.0 and outcome["logs"][0].startswith(f"POST {URL} -> 201")


def test_the_timeout_is_the_tasks_or_the_default_capped_by_the_job_timeout(fake_http):
    adapter = fake_http()
    run({"method": "GET", "url": URL, "timeout": 2})
    run({"method": "GET", "url": URL}, settings(queue_default_timeout=7.0))
    run({"method": "GET", "url": URL, "timeout": 60}, timeout=5)
    timeouts = [kwargs["timeout"] for _, kwargs in adapter.requests]
    assert timeouts[:2] == [2, 7.0] and 4 < timeouts[2] <= 5


def test_a_5xx_answer_fails_the_attempt_naming_the_status(fake_http):
    fake_http(status=500, body=b"boom")
    outcome = run({"method": "GET", "url": URL})
    assert outcome["state"] == "failed" and outcome["retry"] is None
    assert outcome["error"] == "CallFailed: HTTP 500 Reason: boom"


@pytest.mark.parametrize("status", [301, 400, 404, 422])
def test_other_answers_are_done(fake_http, status):
    fake_http(status=status)
    outcome = run({"method": "GET", "url": URL})
    assert outcome["state"] == "done" and outcome["result"]["status"] == status


def test_network_errors_and_timeouts_fail_the_attempt(fake_http):
    fake_http(error=requests.ConnectionError("refused"))
    assert "CallFailed: GET http://backend.test/action failed: ConnectionError: refused" == \
        run({"method": "GET", "url": URL})["error"]
    fake_http(error=requests.ReadTimeout("read timed out"))
    outcome = run({"method": "GET", "url": URL, "timeout": 1.5})
    assert outcome["state"] == "failed" and outcome["error"].startswith("CallTimeout: GET")
    assert "timed out after 1.5 s" in outcome["error"]


def test_only_the_first_64_kib_of_the_answer_are_kept(fake_http):
    fake_http(body=b"a" * (http_call.RESULT_BODY_BYTES + 10))
    result = run({"method": "GET", "url": URL})["result"]
    assert len(result["body"]) == http_call.RESULT_BODY_BYTES and result["truncated"] is True
    fake_http(body=b"a" * http_call.RESULT_BODY_BYTES)
    assert run({"method": "GET", "url": URL})["result"]["truncated"] is False


def test_a_body_that_is_not_utf8_is_replaced(fake_http):
    fake_http(body=b"ok \xff")
    assert run({"method": "GET", "url": URL})["result"]["body"] == "ok \ufffd"


def test_sleep_pauses_the_slot_after_the_call(fake_http):
    fake_http(status=503)
    started = time.monotonic()
    outcome = run({"method": "GET", "url": URL, "sleep": 200000})
    assert time.monotonic() - started >= 0.2 and outcome["state"] == "failed"


def test_a_host_no_longer_allowed_fails_without_retry(fake_http):
    adapter = fake_http()
    outcome = run({"method": "GET", "url": URL}, settings(http_allowed_hosts=["other.test"]))
    assert outcome["state"] == "failed" and outcome["retry"] is False
    assert "not in http_allowed_hosts" in outcome["error"] and adapter.requests == []


def test_the_callback_kind_still_posts_json(fake_http):
    adapter = fake_http(status=204, body=b"")
    config = settings()
    job = {"id": "c1", "kind": "callback", "payload": {"url": URL, "body": {"id": "j"}}, "attempts": 1, "timeout": None}
    outcome = execute_job(PluginManager.load(config), job, JobContext(job, config))
    assert outcome["result"] == {"status": 204}
    assert adapter.requests[0][0].body == b'{"id":"j"}'


def test_startup_sizes_the_pool_for_http_concurrency(monkeypatch):
    monkeypatch.setattr(http_client, "_pool_size", http_client.POOL_SIZE)
    http_call.tubeway_startup("worker", settings(http_concurrency=100, worker_threads=4))
    assert http_client._new_session().get_adapter("http://x")._pool_maxsize == 104
    http_call.tubeway_startup("worker", settings(http_concurrency=16, worker_threads=4))
    assert http_client._pool_size == http_client.POOL_SIZE
