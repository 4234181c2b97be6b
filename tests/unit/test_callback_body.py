"""What a job's callback URL receives: ``tubeway_callback_body``, asked by the ``callback`` kind in the worker."""
from types import SimpleNamespace

import orjson
import pytest

from tubeway import hookimpl
from tubeway.core.errors import ValidationError
from tubeway.plugins.manager import PluginManager
from tubeway.workers.executor import JobContext, execute_job
from test_http_kind import fake_http  # noqa: F401 - the fixture, shared

CALLBACK_URL = "http://hook.test/cb"


def ended(namespace, **fields):
    """An ended job's record as the native API shows it (what the broker puts in the callback job)."""
    return {"id": "j1", "namespace": namespace, "queue": "q", "kind": "external", "state": "done",
            "priority": 1, "payload": {"n": 1}, "result": {"x": 1}, "error": None, "attempts": 1,
            "labels": {}, "logs": [], **fields}


def settings(plugins=None):
    return SimpleNamespace(plugins=plugins, queue_default_timeout=30.0)


def send_callback(payload, config=None, extra=()):
    """Run a callback job with ``payload`` as a worker would; the outcome and the body POSTed."""
    config = config or settings()
    job = {"id": "c1", "kind": "callback", "payload": payload, "attempts": 1, "max_attempts": 5, "timeout": None}
    return execute_job(PluginManager.load(config, extra=list(extra)), job, JobContext(job, config))


def posted(adapter):
    return orjson.loads(adapter.requests[-1][0].body)


def test_an_accepted_job_s_callback_gets_the_accepted_shape(fake_http):
    adapter = fake_http(status=200)
    outcome = send_callback({"url": CALLBACK_URL, "job": ended("accepted")})
    assert outcome["state"] == "done"
    assert posted(adapter) == {"id": "j1", "queue": "q", "status": "done", "priority": 1,
                               "params": {"n": 1}, "result": {"x": 1}, "error": None}


def test_other_jobs_callbacks_get_the_native_record(fake_http):
    adapter = fake_http(status=200)
    record = ended("queue", kind="http", state="failed", error="HTTP 503")
    send_callback({"url": CALLBACK_URL, "job": record})
    assert posted(adapter) == record


def test_a_callback_stored_with_a_body_by_an_older_version_is_sent_as_it_is(fake_http):
    adapter = fake_http(status=200)
    body = {"id": "old", "status": "done", "params": None}
    send_callback({"url": CALLBACK_URL, "body": body})
    assert posted(adapter) == body


class TeamShape:
    """A team's plugin shaping the callbacks of its own namespace."""

    @hookimpl
    def tubeway_callback_body(self, job):
        return {"job": job["id"], "ok": job["state"] == "done"} if job["namespace"] == "team" else None


def test_a_plugin_shapes_its_own_namespace_and_leaves_the_others(fake_http):
    adapter = fake_http(status=200)
    send_callback({"url": CALLBACK_URL, "job": ended("team")}, extra=[("team", TeamShape())])
    assert posted(adapter) == {"job": "j1", "ok": True}
    send_callback({"url": CALLBACK_URL, "job": ended("accepted")}, extra=[("team", TeamShape())])
    assert posted(adapter)["params"] == {"n": 1}


def test_without_the_accepted_plugin_the_native_record_is_sent():
    pm = PluginManager.load(settings(["callback"]))
    assert "accepted" not in pm.names()
    assert pm.callback_body(ended("accepted")) == ended("accepted")


def test_a_callback_job_needs_the_ended_job_or_a_body():
    config = settings(["callback"])
    pm = PluginManager.load(config)
    with pytest.raises(ValidationError, match="needs the ended 'job'"):
        pm.validate_job({"kind": "callback", "payload": {"url": CALLBACK_URL, "job": "j1"}}, config)
    pm.validate_job({"kind": "callback", "payload": {"url": CALLBACK_URL, "job": ended("q")}}, config)
