"""Benchmark ``fraction``: ``POST /fraction`` of 10^6 leaves delivered to the sink, and the first leaf of 10^9 ids.

``tubeway broker``, ``tubeway http`` and ``tubeway worker --processes 2`` run as
separate processes (so each one's memory is its own). One ``POST /fraction`` with
``min`` 0, ``max`` 9,999,999, ``gap`` 10 (10^6 leaves; ``--quick``: 10^5) asks for
``POST`` calls to the sink (``fast_sink.py``), which marks each leaf's ``_min``/``_max``
in a bitmap. The clock runs from the POST until the fraction job is ``done``
(polled every 0.2 s). Every second the broker's VmRSS and the summed VmRSS of the
worker processes are sampled; the rows give the maximum and the growth from the
sample at 25% of the run to the last one (flat memory means the splitting never
holds more than one step's children). At the end the sink's bitmap must show every
leaf exactly once with its exact range.

A second, fresh stack gets a fraction of 10^9 ids (``gap`` 10, 10^8 leaves): the row
is the time from the POST until the sink receives the first leaf call (the sink's
own clock), with how many jobs the broker holds just after; then that stack is stopped.
"""
import http.client
import json
import sys
import time

from bench_callbacks import WORKERS, cpu_seconds, rss_sum_mb, start_workers
from fast_sink import start_sink
from harness import Stack, count_label, poll, rss_mb, state_counts
from report import Row

NAME = "fraction"
MAX = 9_999_999
GAP = 10
BIG_MAX = 999_999_999
QUEUE = "bench-fraction"
RSS_GOAL_MB = 300
GROWTH_GOAL_MB = 50
FIRST_LEAF_GOAL = 1.0
POLL_SECONDS = 0.2
SAMPLE_SECONDS = 1.0
MIN_RATE = 250  # leaves/s below which we stop waiting
FIRST_LEAF_TIMEOUT = 60.0


def run(rows, quick=False):
    """Append this benchmark's rows to ``rows``."""
    high = MAX // 10 if quick else MAX
    leaves = high // GAP + 1
    with Stack() as stack:
        sink_process, sink = start_sink(stack)
        figures = fraction_run(stack, sink_process, sink, high, leaves)
    label = f"{count_label(leaves)} leaves (min 0, max {high:,}, gap {GAP}), {WORKERS} workers"
    rows.append(Row(NAME, f"{label}: delivered", figures["rate"], "leaves/s"))
    rows.append(Row(NAME, "  time to the first leaf call", figures["first_leaf"], "s", ("<", FIRST_LEAF_GOAL)))
    rows.append(Row(NAME, "  leaves covered exactly (1 = every leaf once, exact bounds)",
                    figures["exact"], "bool", (">=", 1)))
    rows.append(Row(NAME, "  duplicate / out-of-range leaf calls", figures["duplicates"] + figures["bad"], "calls",
                    ("<=", 0)))
    rows.append(Row(NAME, "  broker RSS max", figures["broker_max"], "MB", ("<", RSS_GOAL_MB)))
    rows.append(Row(NAME, "  broker RSS growth 25% -> 100% of the run (flat)", figures["broker_growth"], "MB",
                    ("<", GROWTH_GOAL_MB)))
    rows.append(Row(NAME, f"  worker RSS max (sum of {WORKERS} processes)", figures["workers_max"], "MB"))
    rows.append(Row(NAME, "  worker RSS growth 25% -> 100% of the run (flat)", figures["workers_growth"], "MB",
                    ("<", GROWTH_GOAL_MB)))
    rows.append(Row(NAME, f"  worker CPU (sum of {WORKERS} processes, 100% = 1 core)", figures["cpu"]["workers"],
                    "%"))
    rows.append(Row(NAME, "  broker CPU", figures["cpu"]["broker"], "%"))
    rows.append(Row(NAME, "  sink CPU", figures["cpu"]["sink"], "%"))
    with Stack() as stack:
        _, sink = start_sink(stack)
        first, stored = first_leaf_only(stack, sink, BIG_MAX)
    rows.append(Row(NAME, f"{count_label(BIG_MAX // GAP + 1)} leaves (max {BIG_MAX:,}): first leaf call after",
                    first, "s", ("<", FIRST_LEAF_GOAL)))
    rows.append(Row(NAME, "  jobs stored by then (split steps and leaves)", stored, "jobs"))


def start_stack(stack):
    """Broker, HTTP front end and worker pool; returns ``(broker, worker pids)``."""
    broker, _, workers = start_workers(stack)
    stack.tubeway("http", http_processes=1)
    stack.wait_http()
    return broker, workers


def post_fraction(stack, sink, high):
    """``POST /fraction`` to the sink's URL; returns the wall-clock time just before sending."""
    body = json.dumps({"worker": QUEUE, "url": sink.url, "method": "POST", "delay": 0, "json": {},
                       "min": 0, "max": high, "gap": GAP})
    conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=30.0)
    try:
        sent_at = time.time()
        conn.request("POST", "/fraction", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        reply = response.read()
    finally:
        conn.close()
    if response.status != 200 or not json.loads(reply).get("status"):
        raise AssertionError(f"POST /fraction answered {response.status}: {reply[:300]!r}")
    return sent_at


def fraction_job(client):
    """The fraction job itself: the oldest job of the benchmark's queue."""
    jobs = client.list_jobs(namespace="queue", queue=QUEUE, limit=1)["jobs"]
    return jobs[0] if jobs and jobs[0]["kind"] == "fraction" else None


def fraction_run(stack, sink_process, sink, high, leaves):
    """POST the fraction, sample memory until it is done, check coverage; returns the figures."""
    broker, workers = start_stack(stack)
    sink.reset(0, high, GAP)
    client = stack.client()
    pids = {"broker": [broker.pid], "workers": workers, "sink": [sink_process.pid]}
    cpu_before = {name: cpu_seconds(group) for name, group in pids.items()}
    started = time.perf_counter()
    sent_at = post_fraction(stack, sink, high)
    job_id = poll(lambda: (fraction_job(client) or {}).get("id"), 10, "fraction job stored",
                  processes=stack.processes)
    samples = []  # (seconds since the POST, broker MB, workers MB)
    next_sample = 0.0

    def ended():
        nonlocal next_sample
        now = time.perf_counter() - started
        if now >= next_sample:
            samples.append((now, rss_mb(broker.pid), rss_sum_mb(workers)))
            next_sample = now + SAMPLE_SECONDS
        job = client.get(job_id)
        if job["state"] in ("failed", "cancelled"):
            raise AssertionError(f"the fraction job ended {job['state']}: {job.get('error')}")
        return job if job["state"] == "done" else None

    job = poll(ended, leaves / MIN_RATE + 60, f"fraction of {leaves} leaves done", interval=POLL_SECONDS,
               processes=stack.processes)
    elapsed = time.perf_counter() - started
    samples.append((elapsed, rss_mb(broker.pid), rss_sum_mb(workers)))
    cpu = {name: 100.0 * (cpu_seconds(group) - cpu_before[name]) / elapsed for name, group in pids.items()}
    stats = sink.stats()
    if stats["duplicates"] or stats["bad"]:
        print(f"fraction: the sink saw {stats['duplicates']} duplicate leaf calls and {stats['bad']} bad ones; "
              f"first ones: {stats['samples']}\n{warnings(stack)}", file=sys.stderr)
    if job.get("progress", {}).get("done") != leaves:
        raise AssertionError(f"the fraction job's progress is {job.get('progress')}, expected {leaves} done")
    return {"rate": leaves / elapsed, "first_leaf": stats["first_at"] - sent_at, "cpu": cpu,
            "exact": int(stats["covered"] == stats["leaves"] == leaves == stats["count"]
                         and not stats["duplicates"] and not stats["bad"]),
            "duplicates": stats["duplicates"], "bad": stats["bad"], **memory_figures(samples)}


def warnings(stack, limit=40):
    """The processes' logged warnings and errors (the first ``limit`` of each log), to explain a failed check."""
    out = []
    for process in stack.processes:
        try:
            lines = process.log_path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        noted = [line for line in lines if " WARNING " in line or " ERROR " in line or "Traceback" in line]
        out += [f"{process.name}: {line}" for line in noted[:limit]]
    return "\n".join(out) or "(no warnings logged)"


def memory_figures(samples):
    """Max and growth (from the sample at 25% of the run to the last) of the broker and the workers."""
    quarter = samples[-1][0] / 4
    at_quarter = min(samples, key=lambda sample: abs(sample[0] - quarter))
    return {"broker_max": max(s[1] for s in samples), "broker_growth": samples[-1][1] - at_quarter[1],
            "workers_max": max(s[2] for s in samples), "workers_growth": samples[-1][2] - at_quarter[2]}


def first_leaf_only(stack, sink, high):
    """Seconds from ``POST /fraction`` (``max`` = ``high``) to the first leaf call, and the jobs stored then."""
    start_stack(stack)
    sink.reset()
    sent_at = post_fraction(stack, sink, high)
    first_at = poll(lambda: sink.stats()["first_at"], FIRST_LEAF_TIMEOUT, "first leaf call of a 10^9 fraction",
                    interval=0.01, processes=stack.processes)
    return first_at - sent_at, sum(state_counts(stack.client()).values())
