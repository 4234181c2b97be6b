"""``http_allowed_hosts`` holds for every outgoing call, redirect hops included (real loopback servers).

Two servers listen on 127.0.0.1; the first redirects to the second named ``localhost``,
so a host check on names tells them apart.
"""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from tubeway.core.errors import ValidationError
from tubeway.plugins.builtin import http_client
from tubeway.plugins.manager import PluginManager
from tubeway.workers.executor import JobContext, execute_job


class Recorder:
    """A loopback HTTP server recording request paths; ``redirects`` maps a path to a 307's Location."""

    def __init__(self, redirects=None):
        self.paths, self.redirects = [], dict(redirects or {})
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                recorder.paths.append(self.path)
                location = recorder.redirects.get(self.path)
                self.send_response(307 if location else 200)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers():
    """``(first, second)``: the first, called as 127.0.0.1, redirects ``/start`` to the second as localhost."""
    second = Recorder()
    first = Recorder({"/start": f"http://localhost:{second.port}/landed"})
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def test_a_redirect_to_a_host_not_allowed_is_never_sent(servers):
    first, second = servers
    with pytest.raises(http_client.HostNotAllowed) as caught:
        http_client.send("GET", f"http://127.0.0.1:{first.port}/start", 5, allowed_hosts=["127.0.0.1"])
    assert first.paths == ["/start"] and second.paths == []
    message = str(caught.value)
    assert "redirected to" in message and "'localhost' is not in http_allowed_hosts" in message


def test_a_redirect_to_an_allowed_host_is_followed(servers):
    first, second = servers
    for allowed in (["127.0.0.1", "localhost"], []):
        response = http_client.send("GET", f"http://127.0.0.1:{first.port}/start", 5, allowed_hosts=allowed)
        assert response.status_code == 200 and response.url.endswith("/landed")
    assert second.paths == ["/landed", "/landed"]


def test_every_hop_is_checked(servers):
    first, second = servers
    first.redirects.update({"/a": "/b", "/b": f"//localhost:{second.port}/landed"})  # relative, then scheme-relative
    with pytest.raises(http_client.HostNotAllowed):
        http_client.send("GET", f"http://127.0.0.1:{first.port}/a", 5, allowed_hosts=["127.0.0.1"])
    assert first.paths == ["/a", "/b"] and second.paths == []


def test_a_relative_redirect_stays_on_an_allowed_host(servers):
    first, _ = servers
    first.redirects["/a"] = "/done"
    response = http_client.send("GET", f"http://127.0.0.1:{first.port}/a", 5, allowed_hosts=["127.0.0.1"])
    assert response.status_code == 200 and first.paths == ["/a", "/done"]


def test_the_first_request_to_a_host_not_allowed_is_never_sent(servers):
    _, second = servers
    with pytest.raises(http_client.HostNotAllowed, match="'localhost' is not in http_allowed_hosts"):
        http_client.post_json(f"http://localhost:{second.port}/cb", {}, 5, allowed_hosts=["127.0.0.1"])
    assert second.paths == []


def settings(**values):
    return SimpleNamespace(**{"plugins": ["callback"], "queue_default_timeout": 5.0, **values})


def run(kind, payload, config):
    job = {"id": "j1", "kind": kind, "payload": payload, "attempts": 1, "max_attempts": 5, "timeout": None}
    return execute_job(PluginManager.load(config), job, JobContext(job, config))


def test_an_http_job_redirected_to_a_host_not_allowed_fails_without_retry(servers):
    first, second = servers
    outcome = run("http", {"method": "POST", "url": f"http://127.0.0.1:{first.port}/start", "json": {"a": 1}},
                  settings(http_allowed_hosts=["127.0.0.1"]))
    assert (outcome["state"], outcome["retry"]) == ("failed", False)
    assert "not in http_allowed_hosts" in outcome["error"]
    assert first.paths == ["/start"] and second.paths == []


def test_a_callback_to_a_host_not_allowed_never_arrives_and_is_not_retried(servers):
    first, second = servers
    config = settings(http_allowed_hosts=["127.0.0.1"])
    outcome = run("callback", {"url": f"http://localhost:{second.port}/cb", "body": {"id": "x"}}, config)
    assert (outcome["state"], outcome["retry"]) == ("failed", False)
    assert "'localhost' is not in http_allowed_hosts" in outcome["error"]
    outcome = run("callback", {"url": f"http://127.0.0.1:{first.port}/start", "body": {"id": "x"}}, config)
    assert (outcome["state"], outcome["retry"]) == ("failed", False)
    assert first.paths == ["/start"] and second.paths == []


def test_a_callback_job_for_a_host_not_allowed_is_refused_at_submit():
    config = settings(http_allowed_hosts=["127.0.0.1"])
    pm = PluginManager.load(config)
    with pytest.raises(ValidationError, match="not in http_allowed_hosts"):
        pm.validate_job({"kind": "callback", "payload": {"url": "http://localhost:1/cb", "body": {}}}, config)
    pm.validate_job({"kind": "callback", "payload": {"url": "http://127.0.0.1:1/cb", "body": {}}}, config)
