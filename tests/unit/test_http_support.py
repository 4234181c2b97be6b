"""Shared fakes for the HTTP front-end tests: an in-memory broker, a plugin manager, a test case.

:class:`FakeBroker` implements :class:`~tubeway.core.client.BrokerCalls` with an
async ``call`` that round-trips every body through the wire codec (so what the
front end sends must be encodable, as with the real client) and answers from a
dict of job records.
"""
import itertools
import time
import types
import uuid

import orjson
import tornado.httputil
from tornado.tcpclient import TCPClient
from tornado.testing import AsyncHTTPTestCase

from tubeway.broker.http.app import make_app, server_options
from tubeway.broker.http.base import BaseHandler
from tubeway.core import protocol as p
from tubeway.core.client import BrokerCalls
from tubeway.core.errors import JobConflict, JobNotFound, ValidationError
from tubeway.core.job import ENDED, State
from tubeway.plugins.hookspecs import JobKind

KINDS = {"external": JobKind("external", False), "noop": JobKind("noop")}
TOKEN = "s3cret-token"


def make_settings(**overrides):
    """The settings the front end reads, as a plain namespace."""
    values = {
        "http": "127.0.0.1:0", "broker": "tcp://127.0.0.1:5555", "auth_tokens": [],
        "max_body_size": 16 * 1024 * 1024, "lease_seconds": 300, "request_timeout": 10.0,
        "log_level": "INFO", "insecure_no_auth": False,
    }
    values.update(overrides)
    return types.SimpleNamespace(**values)


class FakeBroker(BrokerCalls):
    """An in-memory broker answering the client commands."""

    timeout = 10.0

    def __init__(self):
        self.jobs = {}
        self.calls = []
        self.workers = 1
        self.failure = None
        self.metrics_text = "# TYPE tubeway_jobs_total counter\ntubeway_jobs_total 3\n"
        self._clock = itertools.count(1)

    async def call(self, command, body, timeout=None):
        body = p.unpack(p.pack(body))
        self.calls.append((command.decode(), body))
        if self.failure is not None:
            raise self.failure
        return p.unpack(p.pack(getattr(self, "_" + command.decode().lower())(body)))

    def commands(self):
        """Names of the commands received, in order."""
        return [name for name, _ in self.calls]

    def add(self, **fields):
        """Store a job directly; returns its record."""
        state = fields.pop("state", None)
        spec = {"namespace": "default", "queue": "default", "kind": "noop", "payload": None,
                "priority": 0, "run_at": None, "labels": {}, **fields}
        job = self.jobs[self._submit({"jobs": [spec]})["ids"][0]]
        job["state"] = state or job["state"]
        return job

    def _find(self, body):
        job = self.jobs.get(body["id"])
        if job is None or (body.get("namespace") and job["namespace"] != body["namespace"]):
            raise JobNotFound(f"no job with id '{body['id']}'")
        return job

    def _submit(self, body):
        ids = []
        for spec in body["jobs"]:
            job_id = str(uuid.uuid4())
            self.jobs[job_id] = {
                **spec, "id": job_id, "state": "delayed" if spec.get("run_at") else "queued",
                "attempts": 0, "result": None, "error": None, "progress": None, "logs": [],
                "worker": None, "lease_until": None, "created_at": next(self._clock),
            }
            ids.append(job_id)
        return {"ids": ids, "created": [True] * len(ids)}

    def _get(self, body):
        return self._find(body)

    def _list(self, body):
        jobs = [j for j in self.jobs.values()
                if all(body.get(k) in (None, j[k]) for k in ("namespace", "queue", "kind", "state"))
                and all(j["labels"].get(k) == v for k, v in body["labels"].items())]
        start = int(body.get("cursor") or 0)
        end = start + body["limit"]
        return {"jobs": jobs[start:end], "next_cursor": str(end) if end < len(jobs) else None}

    def _queues(self, body):
        queues = {}
        for job in self.jobs.values():
            counts = queues.setdefault((job["namespace"], job["queue"]), {})
            counts[job["state"]] = counts.get(job["state"], 0) + 1
        return {"queues": [{"namespace": n, "queue": q, "counts": c} for (n, q), c in sorted(queues.items())]}

    def _retry(self, body):
        job = self._find(body)
        if job["state"] not in ("failed", "cancelled"):
            raise JobConflict(f"job is {job['state']}: only failed or cancelled jobs can be retried")
        job["state"] = "queued"
        return job

    def _cancel(self, body):
        job = self._find(body)
        if State(job["state"]) in ENDED:
            raise JobConflict(f"job already {job['state']}")
        job["state"] = "cancelled"
        return job

    def _delete(self, body):
        return self.jobs.pop(self._find(body)["id"])

    def _take(self, body):
        ready = [j for j in self.jobs.values()
                 if j["namespace"] == body["namespace"] and j["state"] == "queued"
                 and (not body["queues"] or j["queue"] in body["queues"])]
        if not ready:
            return None
        job = min(ready, key=lambda j: (j["priority"], j["created_at"]))
        job.update(state="running", lease_until=time.time() + body["lease"])
        return job

    def _update(self, body):
        job = self._find(body)
        if State(job["state"]) in ENDED:
            raise JobConflict(f"job already {job['state']}")
        if body["state"] == "running":
            job["lease_until"] = time.time() + (body["lease"] or 300)
        else:
            job.update(state=body["state"], result=body["result"], error=body["error"])
        return job

    def _wait(self, body):
        return self._find(body)

    def _health(self, body):
        return {"workers": self.workers, "kinds": sorted(KINDS)}

    def _metrics(self, body):
        return {"text": self.metrics_text}


class HelloHandler(BaseHandler):
    """A plugin's route."""

    def get(self):
        self.reply({"hello": "plugin"})


class FakePlugins:
    """The plugin manager calls the front end makes."""

    def __init__(self):
        self.decision = None

    def kinds(self):
        return dict(KINDS)

    def validate_job(self, spec, settings):
        if spec.get("payload") == {"refuse": True}:
            raise ValidationError("refused by a plugin", "payload")

    def authenticate(self, handler, settings):
        return self.decision

    def http_routes(self, settings):
        return [(r"/plugin/hello", HelloHandler)]

    def names(self):
        return ["fake"]


class HttpCase(AsyncHTTPTestCase):
    """A front end over a :class:`FakeBroker` and :class:`FakePlugins`."""

    settings_overrides = {}

    def get_app(self):
        self.config = make_settings(**self.settings_overrides)
        self.broker = FakeBroker()
        self.plugins = FakePlugins()
        return make_app(self.config, self.broker, self.plugins)

    def get_httpserver_options(self):
        return server_options(self.config)

    def call(self, method, path, body=None, headers=None):
        """One request; ``body`` may be bytes or JSON data. Returns the response."""
        if body is not None and not isinstance(body, (bytes, str)):
            body = orjson.dumps(body)
        return self.fetch(path, method=method, body=body, headers=headers,
                          allow_nonstandard_methods=True, raise_error=False)

    def call_json(self, method, path, body=None, headers=None):
        """``(status, parsed JSON body or None)`` of one request."""
        response = self.call(method, path, body, headers)
        return response.code, (orjson.loads(response.body) if response.body else None)


async def raw_exchange(port, *parts, responses=1):
    """Send ``parts`` on a fresh connection; ``(status, headers, body)`` of the reply.

    With ``responses`` > 1, a list of that many replies read from the connection.
    """
    stream = await TCPClient().connect("127.0.0.1", port)
    try:
        for part in parts:
            await stream.write(part)
        replies = []
        for _ in range(responses):
            head = (await stream.read_until(b"\r\n\r\n")).decode("latin-1")
            start, _, rest = head.partition("\r\n")
            headers = tornado.httputil.HTTPHeaders.parse(rest)
            length = int(headers.get("Content-Length", "0"))
            body = await stream.read_bytes(length) if length else b""
            replies.append((int(start.split(" ")[1]), headers, body))
        return replies[0] if responses == 1 else replies
    finally:
        stream.close()


def chunked(data, size=1000):
    """``data`` in HTTP/1.1 chunked transfer encoding."""
    pieces = [data[i:i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in pieces) + b"0\r\n\r\n"
