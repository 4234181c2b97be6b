"""The built-in plugins' own checks, and the one shared HTTP client they call through (no sockets)."""
from types import SimpleNamespace

import pytest
import requests

from tubeway.core.errors import ValidationError
from tubeway.plugins.builtin import http_client
from tubeway.plugins.manager import PluginManager
from test_http_kind import fake_http  # noqa: F401 - the fixture, shared
from test_plugins import job, settings


# Built-in plugins' own checks.

@pytest.mark.parametrize("spec", [
    {"kind": "sleep", "payload": -1},
    {"kind": "sleep", "payload": "5"},
    {"kind": "fail", "payload": 3},
    {"kind": "callback", "payload": {"url": "ftp://x"}},
    {"kind": "callback", "payload": "http://x"},
    {"kind": "callback", "payload": {"url": "http://x", "headers": {"a": 1}}},
    {"kind": "spawn", "payload": [{"kind": "noop"}]},
    {"kind": "spawn", "payload": {"children": {"kind": "noop"}}},
    {"kind": "spawn", "payload": {"children": ["noop"]}},
    {"kind": "spawn", "payload": {"children": [], "await": "yes"}},
    {"kind": "spawn", "payload": {"kids": []}},
])
def test_builtins_refuse_bad_payloads(spec):
    with pytest.raises(ValidationError):
        PluginManager.load(settings()).validate_job(spec, settings())


def test_builtins_accept_good_payloads():
    pm = PluginManager.load(settings())
    for spec in ({"kind": "sleep", "payload": 0.5}, {"kind": "fail", "payload": None},
                 {"kind": "spawn", "payload": None}, {"kind": "spawn", "payload": {"children": [{"kind": "noop"}]}},
                 {"kind": "spawn", "payload": {"children": [], "await": True}},
                 {"kind": "callback", "payload": {"url": "https://x/y", "body": {"a": 1}}}):
        pm.validate_job(spec, settings())


def test_post_json_sends_json_with_a_timeout(fake_http):
    adapter = fake_http(status=204)
    response = http_client.post_json("http://hook.test/done", {"id": "j1"}, timeout=7, headers={"X-A": "1"})
    assert response.status_code == 204
    request, kwargs = adapter.requests[0]
    assert request.method == "POST" and request.body == b'{"id":"j1"}'
    assert request.headers["Content-Type"] == "application/json" and request.headers["X-A"] == "1"
    assert kwargs["timeout"] == 7


def test_post_json_raises_on_non_2xx_and_network_errors(fake_http):
    fake_http(status=503)
    with pytest.raises(http_client.CallFailed, match="answered 503") as caught:
        http_client.post_json("http://hook.test/", {}, timeout=1)
    assert caught.value.status == 503
    fake_http(error=requests.ConnectionError("refused"))
    with pytest.raises(http_client.CallFailed, match="ConnectionError: refused"):
        http_client.post_json("http://hook.test/", {}, timeout=1)


def test_send_returns_any_status_unless_required(fake_http):
    fake_http(status=404)
    assert http_client.send("GET", "http://hook.test/", timeout=1).status_code == 404


def test_callback_jobs_post_their_body_within_the_job_timeout(fake_http):
    adapter = fake_http(status=200)
    pm = PluginManager.load(settings(["callback"]))
    context = SimpleNamespace(settings=settings(), remaining=lambda: 2.5)
    result = pm.run_job(job("callback", {"url": "http://hook.test/cb", "body": {"status": "done"}}), context)
    assert result == {"status": 200}
    assert adapter.requests[0][1]["timeout"] == 2.5


def test_the_shared_session_is_one_per_process():
    assert http_client.session() is http_client.session()
    adapter = http_client.session().get_adapter("http://example.test/")
    assert adapter._pool_maxsize == http_client.POOL_SIZE


def test_calls_carry_the_session_headers_under_their_own(fake_http):
    adapter = fake_http(status=200)
    http_client.send("GET", "http://hook.test/", timeout=1, headers={"Accept": "text/plain", "X-Team": "a"})
    sent = adapter.requests[0][0].headers
    assert sent["User-Agent"] == http_client.USER_AGENT
    assert (sent["Accept"], sent["X-Team"]) == ("text/plain", "a")
    http_client.send("GET", "http://hook.test/", timeout=1, headers={"User-Agent": None})
    assert "User-Agent" not in adapter.requests[1][0].headers


def test_every_call_carries_the_ca_bundle_since_an_http_call_may_redirect_to_https(fake_http, monkeypatch):
    adapter = fake_http(status=200)
    client = http_client.session()
    client.mount("https://", adapter)
    monkeypatch.setattr(client, "verify", "/etc/bundle.pem")
    http_client.send("GET", "http://hook.test/", timeout=1)
    http_client.send("GET", "HTTPS://hook.test/", timeout=1)
    assert [kwargs["verify"] for _, kwargs in adapter.requests] == ["/etc/bundle.pem", "/etc/bundle.pem"]

