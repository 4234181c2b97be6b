"""Benchmark ``bullmq``: the BullMQ proxy API's bulk add over HTTP, and jobs drained through a registered endpoint.

``tubeway broker``, ``tubeway http`` and ``tubeway worker --processes 2`` run as separate
processes, with the fast local sink (``fast_sink.py``) as the queue's worker endpoint.

* bulk add: 20,000 jobs through ``POST /queues/<q>/jobs``, 1,000 per request, from
  ``CLIENTS`` keep-alive connections at once, each sending its next request when its last
  is answered (goal 20,000 jobs/s);
* drain: ``POST /workers`` registers the sink (concurrency 32) once every job is in; the
  clock runs until the sink has counted every job and the broker shows them done. In the
  same run, ``bench_callbacks.deliver`` sends as many ``http`` jobs to the same sink
  through the same client: the goal is at least 0.9 of that rate.
"""
import concurrent.futures
import time

import orjson
import requests
from bench_callbacks import deliver, start_workers
from fast_sink import start_sink
from harness import Stack, count_label, poll, state_counts
from report import Row

NAME = "bullmq"
TOTAL = 20_000
PER_REQUEST = 1_000
CLIENTS = 4
ADD_GOAL = 20_000
DRAIN_GOAL = 0.9
CONCURRENCY = 128
QUEUE = "bench-bullmq"
MIN_RATE = 100  # jobs/s below which we stop waiting


def run(rows, quick=False):
    """Append this benchmark's rows to ``rows``."""
    total = TOTAL // 10 if quick else TOTAL
    with Stack() as stack:
        _, sink = start_sink(stack)
        broker, _, workers = start_workers(stack)
        stack.tubeway("http", http_processes=1)
        stack.wait_http()
        add_rate = bulk_add(stack.http_url, total)
        drain_rate = drain(stack, sink, total)
        sink.reset()
        callbacks = deliver(stack, sink, total, {"broker": [broker.pid], "workers": workers})["rate"]
    rows.append(Row(NAME, f"bulk add over HTTP, {count_label(PER_REQUEST)} jobs per request, {CLIENTS} clients",
                    add_rate, "jobs/s", (">=", ADD_GOAL)))
    rows.append(Row(NAME, f"{count_label(total)} jobs drained through POST /workers (sink, concurrency "
                          f"{CONCURRENCY}), 2 workers", drain_rate, "jobs/s"))
    rows.append(Row(NAME, "  the same count of http jobs to the same sink (callbacks), this run", callbacks, "calls/s"))
    rows.append(Row(NAME, "  drained / callbacks", drain_rate / callbacks, "x", (">=", DRAIN_GOAL)))


def bulk_add(base, total):
    """Jobs per second added by ``POST /queues/<q>/jobs`` with ``PER_REQUEST`` jobs each, ``CLIENTS`` at once."""
    body = orjson.dumps([{"name": "bench", "data": {"n": n}} for n in range(PER_REQUEST)])
    requests_each = [len(range(i, total // PER_REQUEST, CLIENTS)) for i in range(CLIENTS)]

    def client(count):
        with requests.Session() as session:
            for _ in range(count):
                response = session.post(f"{base}/queues/{QUEUE}/jobs", data=body, timeout=60,
                                        headers={"Content-Type": "application/json"})
                response.raise_for_status()
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, requests_each))
    return total / (time.perf_counter() - started)


def drain(stack, sink, total):
    """Jobs per second from registering the sink as the queue's worker until every job is delivered and done."""
    sink.reset()
    client = stack.client()
    started = time.perf_counter()
    response = requests.post(f"{stack.http_url}/workers", timeout=10, json={
        "queue": QUEUE, "endpoint": {"url": sink.url, "method": "POST", "timeout": 10000},
        "opts": {"concurrency": CONCURRENCY}})
    response.raise_for_status()

    def all_done():
        if sink.count() < total:
            return False
        counts = state_counts(client)
        if counts.get("failed"):
            raise AssertionError(f"bullmq jobs failed: {counts}")
        return counts.get("done", 0) >= total
    poll(all_done, total / MIN_RATE, f"{total} bullmq jobs delivered and done", processes=stack.processes)
    return total / (time.perf_counter() - started)
