"""Tubeway in the peer benchmarks: its durable default, 2 worker processes, measured like the peers.

``tubeway broker`` and ``tubeway worker --processes 2`` run as real processes (a
:class:`harness.Stack`); the client is Tubeway's own broker client, driven by the same
workload code as the Python peers (``drivers/workloads_client.py``). The ``stamp`` kind comes
from a plugin (``drivers/tubeway_stamp.py``) that the harness makes visible to Tubeway's
processes through a ``.dist-info`` on ``PYTHONPATH``, the way an installed plugin is found.
"""
import http.client
import json
import sys
import time
from pathlib import Path

import loadgen
from harness import Stack, free_port, state_counts, wait_http
from tubeway.core.job import normalize_spec

DRIVERS = Path(__file__).resolve().parent / "drivers"
sys.path.insert(0, str(DRIVERS))
import workloads_client  # noqa: E402  (the drivers folder is on the path only now)

WORKERS = 2
BATCH = 1000
SPECS = {"noop": {"kind": "noop"}, "sleep": {"kind": "sleep", "payload": 0.01}, "stamp": {"kind": "stamp"}}
HTTP_CONNECTIONS = 32
HTTP_ROUNDS = 2
DURABILITY = "SQLite WAL, synchronous=FULL (default): every acknowledged job is fsynced"


def plugin_env(build_dir):
    """Environment variables that let Tubeway's processes load the ``stamp`` plugin."""
    info = Path(build_dir).resolve() / "tubeway-plugin" / "tubeway_peerbench-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tubeway-peerbench\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[tubeway]\npeerbench = tubeway_stamp\n")
    return {"PYTHONPATH": f"{info.parent}:{DRIVERS}"}


class Client:
    """The workloads' adapter for Tubeway's broker client (batches of 1,000 per submit)."""

    def __init__(self, broker):
        self.broker = broker
        self.specs = {name: normalize_spec(spec) for name, spec in SPECS.items()}

    def enqueue(self, task, count):
        spec = self.specs[task]
        for start in range(0, count, BATCH):
            self.broker.submit([spec] * min(BATCH, count - start), timeout=60)

    def enqueue_delayed(self, delays):
        out = []
        for start in range(0, len(delays), BATCH):
            part = delays[start:start + BATCH]
            mono, wall = time.monotonic(), time.time()
            ids = self.broker.submit([normalize_spec({"kind": "stamp", "run_at": wall + d}) for d in part],
                                     timeout=60)["ids"]
            out.extend((job_id, mono + d) for job_id, d in zip(ids, part))
        return out

    def enqueue_one(self, task):
        return self.broker.submit([self.specs[task]])["ids"][0]

    def done_count(self):
        return state_counts(self.broker).get("done", 0)

    def wait(self, handle, timeout):
        record = self.broker.wait(handle, timeout)
        if record["state"] != "done":
            raise RuntimeError(f"job {handle} is {record['state']}: {record.get('error')}")
        return record["result"]

    def value(self, handle):
        return self.broker.get(handle)["result"]


class HttpClient(Client):
    """As :class:`Client`, but single jobs go in through ``POST /api/v1/jobs`` on one keep-alive connection."""

    def __init__(self, broker, port):
        super().__init__(broker)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def enqueue_one(self, task):
        self.conn.request("POST", "/api/v1/jobs", json.dumps(SPECS[task]), {"Content-Type": "application/json"})
        reply = self.conn.getresponse()
        body = reply.read()
        if reply.status != 201:
            raise RuntimeError(f"POST /api/v1/jobs answered {reply.status}: {body[:200]!r}")
        return json.loads(body)["id"]


def run_http_latency(count, timeout, build_dir):
    """Workload 4 through Tubeway's HTTP API (``tubeway up``): ``t0`` before the POST, p50 and p99 in ms."""
    with Stack() as stack:
        stack.tubeway("up", env=plugin_env(build_dir), processes=WORKERS, http_processes=1)
        stack.wait_broker(workers=WORKERS)
        stack.wait_http()
        client = HttpClient(stack.client(), stack.http_port)
        try:
            figures = workloads_client.run(client, "latency", count, timeout)
        finally:
            client.conn.close()
    return {"http_p50": figures["p50"], "http_p99": figures["p99"]}


def run(workload, count, timeout, delays, build_dir):
    """One workload on a fresh Tubeway; its figures as a dict."""
    env = plugin_env(build_dir)
    with Stack() as stack:
        stack.tubeway("broker", env=env)
        stack.wait_broker()
        stack.tubeway("worker", env=env, processes=WORKERS)
        stack.wait_broker(workers=WORKERS)
        figures = workloads_client.run(Client(stack.client()), workload, count, timeout, delays)
        for process in stack.processes:
            process.check_alive()
    figures["durability"] = DURABILITY
    return figures


#: One job added through the BullMQ proxy route (workload 5): nothing processes its queue, as with a no-op.
BULLMQ_BODY = b'[{"name":"noop","data":1}]'


def run_http(seconds):
    """Workload 5: single-job ``POST /api/v1/jobs`` and BullMQ ``POST /queues/<q>/jobs`` next to a bare Tornado
    handler, same load tool and run.

    Rounds alternate between the two (best round of each counts), after a short warm-up.
    Tubeway runs as ``tubeway up --processes 2 --http-processes 1``.
    """
    tool = loadgen.tool_name()
    with Stack() as bare_stack, Stack() as stack:
        port = free_port()
        bare_stack.start("bare-tornado", [sys.executable, str(Path(loadgen.__file__).parent / "bare_tornado.py"),
                                          str(port)])
        stack.tubeway("up", processes=WORKERS, http_processes=1)
        wait_http(port, processes=bare_stack.processes)
        stack.wait_http()
        targets = {"bare": (f"http://127.0.0.1:{port}/api/v1/jobs", loadgen.BODY),
                   "native": (f"{stack.http_url}/api/v1/jobs", loadgen.BODY),
                   "bullmq": (f"{stack.http_url}/queues/bench-peers/jobs", BULLMQ_BODY)}
        loads = {name: [] for name in targets}
        for url, body in targets.values():
            loadgen.post_load(url, HTTP_CONNECTIONS, min(2.0, seconds), tool, body)
        for _ in range(HTTP_ROUNDS):
            for name, (url, body) in targets.items():
                loads[name].append(loadgen.post_load(url, HTTP_CONNECTIONS, seconds / HTTP_ROUNDS, tool, body))
        for process in stack.processes + bare_stack.processes:
            process.check_alive()
    best = {name: max(runs, key=lambda load: load.rate) for name, runs in loads.items()}
    errors = sum(load.errors for load in loads["native"] + loads["bullmq"])
    return {"native": best["native"].rate, "bare": best["bare"].rate, "native_p50": best["native"].p50_ms,
            "bullmq": best["bullmq"].rate,
            "tool": tool, "errors": errors, "durability": DURABILITY}
