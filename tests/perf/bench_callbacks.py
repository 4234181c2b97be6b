"""Benchmark ``callbacks``: ``http`` jobs (Queue API tasks) delivered to a fast local sink by 2 workers.

The sink (``fast_sink.py``, one asyncio process) is measured alone first with the
load tool (wrk when installed), so its ceiling is known. Then ``tubeway broker`` and
``tubeway worker --processes 2`` run as separate processes; 20,000 ``http`` jobs
(what ``POST /task`` stores: namespace ``queue``, ``POST`` to the sink with a small
JSON body, no delay) go in through the native ``BrokerClient.submit`` in batches of
1,000, so the submission is not the bottleneck and the row measures delivery. The
clock runs from the first submit until the sink has counted every call (polled
every 50 ms) and then the broker reports every job done. CPU per process comes from
``/proc/<pid>/stat`` over the same interval (100% = one core). Last, ``client_cost``
measures the CPU one call takes through Tubeway's HTTP client and through the layers
under it, against the same sink, in the benchmark's own process.
"""
import os
import time

import client_cost
import loadgen
from fast_sink import start_sink
from harness import Stack, count_label, poll, state_counts, submit_batches
from report import Row
from tubeway.core.job import normalize_spec

NAME = "callbacks"
TOTAL = 20_000
BATCH = 1_000
WORKERS = 2
GOAL = 3_000
QUEUE = "bench-callbacks"
SINK_CONNECTIONS = 32
SINK_SECONDS = 5.0
POLL_SECONDS = 0.05
MIN_RATE = 100  # calls/s below which we stop waiting: the deadline is TOTAL / MIN_RATE
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- /proc helpers (shared with bench_fraction) ------------------------------------------
def _stat_fields(pid):
    """The fields of /proc/<pid>/stat after the command name (index 0 is the state)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rpartition(")")[2].split()


def children(pid):
    """Pids of the processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(_stat_fields(entry)[1]) == pid:
                    found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue  # exited meanwhile
    return found


def cpu_seconds(pids):
    """User + system CPU seconds used so far by ``pids`` (those still running)."""
    total = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / CLOCK_TICKS


def rss_sum_mb(pids):
    """Summed VmRSS of ``pids`` in MB (those still running)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                total += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return total / 1024.0


def worker_pids(stack, pool, count):
    """The pool's ``count`` worker processes (children of the ``tubeway worker`` supervisor)."""
    def forked():
        pids = children(pool.pid)
        return pids if len(pids) >= count else None

    return poll(forked, 30, f"{count} worker processes forked", processes=stack.processes)


def start_workers(stack, count=WORKERS):
    """Broker and a pool of ``count`` workers, registered; returns ``(broker, pool, worker pids)``."""
    broker = stack.tubeway("broker")
    stack.wait_broker()
    pool = stack.tubeway("worker", processes=count)
    stack.wait_broker(workers=count)
    return broker, pool, worker_pids(stack, pool, count)


# -- the benchmark ------------------------------------------------------------------------
def run(rows, quick=False):
    """Append this benchmark's rows to ``rows``."""
    total = TOTAL // 10 if quick else TOTAL
    seconds = 2.0 if quick else SINK_SECONDS
    with Stack() as stack:
        sink_process, sink = start_sink(stack)
        load = loadgen.post_load(sink.url, SINK_CONNECTIONS, seconds)
        rows.append(Row(NAME, f"sink alone ({SINK_CONNECTIONS} conns, {load.tool}, {seconds:g} s)",
                        load.rate, "req/s"))
        sink.reset()
        broker, pool, workers = start_workers(stack)
        figures = deliver(stack, sink, total, {"broker": [broker.pid], "workers": workers,
                                               "sink": [sink_process.pid]})
        for process in (pool, broker):
            process.stop()  # the layers are measured with only the sink running
        costs = client_cost.measure(sink.url, calls=1000 if quick else 4000)
    label = f"{count_label(total)} http jobs (native submit, batches of {count_label(BATCH)}), {WORKERS} workers"
    rows.append(Row(NAME, f"{label}: delivered", figures["rate"], "calls/s", (">=", GOAL)))
    rows.append(Row(NAME, "  of which enqueue alone", figures["enqueue_rate"], "jobs/s"))
    rows.append(Row(NAME, "  sink count reached N -> broker shows N done", figures["done_lag_ms"], "ms"))
    rows.append(Row(NAME, f"  worker CPU (sum of {WORKERS} processes, 100% = 1 core)", figures["cpu"]["workers"], "%"))
    rows.append(Row(NAME, "  broker CPU", figures["cpu"]["broker"], "%"))
    rows.append(Row(NAME, "  sink CPU", figures["cpu"]["sink"], "%"))
    for layer, micros in costs.items():
        rows.append(Row(NAME, f"CPU per call, {layer} (1 process, 16 threads)", micros, "us"))


def deliver(stack, sink, total, pids):
    """Submit ``total`` http jobs to the sink and wait until all are delivered and done; returns the figures."""
    spec = normalize_spec({"kind": "http", "namespace": "queue", "queue": QUEUE, "attempts": 1,
                           "payload": {"method": "POST", "url": sink.url, "json": {"bench": NAME}}})
    client = stack.client()
    cpu_before = {name: cpu_seconds(group) for name, group in pids.items()}
    started = time.perf_counter()
    submitting = submit_batches(client, spec, total, BATCH)
    delivered_at = []

    def all_done():
        # The broker's QUEUES count is not free: ask it only once the sink has every call.
        if not delivered_at:
            if sink.count() < total:
                return False
            delivered_at.append(time.perf_counter())
        counts = state_counts(client)
        if counts.get("failed") or counts.get("cancelled"):
            raise AssertionError(f"http jobs did not succeed: {counts}")
        return delivered_at and counts.get("done", 0) >= total

    poll(all_done, total / MIN_RATE, f"{total} calls delivered and done", interval=POLL_SECONDS,
         processes=stack.processes)
    finished = time.perf_counter()
    elapsed = finished - started
    cpu = {name: 100.0 * (cpu_seconds(group) - cpu_before[name]) / elapsed for name, group in pids.items()}
    received = sink.count()
    if received != total:
        raise AssertionError(f"the sink counted {received} calls, expected {total}")
    return {"rate": total / elapsed, "enqueue_rate": total / submitting,
            "done_lag_ms": (finished - delivered_at[0]) * 1e3, "cpu": cpu}
