"""Benchmark ``javascript``: trivial ``javascript`` runs end to end with 2 workers, and what one run costs.

``tubeway broker`` and ``tubeway worker --processes 2`` run as separate processes;
20,000 jobs of kind ``javascript`` (``return params.n + 1``, each with its own params) go
in through the native ``BrokerClient.submit`` in batches of 1,000. The clock runs from
the first submit until the broker reports them all done (polled every 0.1 s); the
workers' CPU over that interval gives the CPU one run costs them.

Then, in this process, in CPU time (of all its threads: the caller's and the isolate's),
as wall time on this shared machine mostly measures the other sessions: a fresh isolate
with the sandbox loaded (the cost a new V8 context per run would have: mini-racer 0.14
makes a context only with an isolate), and on a warm isolate one run as a worker makes it
(the sandbox's ``step``: the check that the state is clean, then the command), the check
alone (its ``post``) and a call that does nothing, each the mean of many.
"""
import time

import orjson
from bench_callbacks import children, cpu_seconds
from harness import Stack, count_label, wait_all_done
from report import Row
from tubeway.core.job import normalize_spec
from tubeway.plugins.builtin import js_engine

NAME = "javascript"
TOTAL = 20_000
BATCH = 1_000
WORKERS = 2
GOAL = 2_000
COMMAND = "return params.n + 1"
POLL_SECONDS = 0.1
MIN_RATE = 50  # runs/s below which we stop waiting: the deadline is TOTAL / MIN_RATE
ISOLATES = 20
CALLS = 2_000


def run(rows, quick=False):
    """Append this benchmark's rows to ``rows``."""
    total = TOTAL // 10 if quick else TOTAL
    rate, cpu_ms = drain(total)
    rows.append(Row(NAME, f"{count_label(total)} trivial runs, {WORKERS} workers: end to end", rate, "runs/s",
                    (">=", GOAL)))
    rows.append(Row(NAME, "  worker CPU per run (both workers)", cpu_ms, "ms"))
    isolate_ms, step_us, post_us, call_us = costs(ISOLATES // 4 if quick else ISOLATES,
                                                  CALLS // 4 if quick else CALLS)
    rows.append(Row(NAME, "one fresh isolate + sandbox, CPU (a new context per run would cost this)", isolate_ms,
                    "ms"))
    rows.append(Row(NAME, "  warm isolate, in process, CPU: one trivial run, clean-state check included", step_us,
                    "us"))
    rows.append(Row(NAME, "  warm isolate, in process, CPU: the clean-state check alone", post_us, "us"))
    rows.append(Row(NAME, "  warm isolate, in process, CPU: a call that does nothing", call_us, "us"))


def drain(total):
    """``(runs/s from first submit to all done, worker CPU ms per run)``."""
    specs = [normalize_spec({"kind": "javascript", "payload": {"command": COMMAND, "params": {"n": n}}})
             for n in range(total)]
    with Stack() as stack:
        stack.tubeway("broker")
        stack.wait_broker()
        pool = stack.tubeway("worker", processes=WORKERS)
        stack.wait_broker(workers=WORKERS)
        client = stack.client()
        workers = [pool.pid, *children(pool.pid)]
        cpu_before = cpu_seconds(workers)
        started = time.perf_counter()
        for first in range(0, total, BATCH):
            client.submit(specs[first:first + BATCH], timeout=60)

        wait_all_done(client, total, total / MIN_RATE, f"{total} runs done", stack, interval=POLL_SECONDS)
        seconds = time.perf_counter() - started
        cpu = cpu_seconds(workers) - cpu_before
    return total / seconds, cpu / total * 1000


def costs(isolates, calls):
    """CPU ``(ms per fresh isolate made and closed, µs per warm run with its check, µs per check alone,
    µs per call that does nothing)``."""
    js_engine.start_v8()
    started = time.process_time()
    for _ in range(isolates):
        js_engine.Isolate(10, 100).close()
    isolate_ms = (time.process_time() - started) / isolates * 1000
    isolate = js_engine.Isolate(10, 100)
    try:
        step_input = orjson.dumps([COMMAND, orjson.dumps({"n": 1}).decode(), 1]).decode()
        step_us = _mean_us(lambda: isolate.call("step", step_input, 5.0), calls)
        post_us = _mean_us(lambda: isolate.call("post", "", 5.0), calls)
        call_us = _mean_us(lambda: isolate.call("logs", "", 5.0), calls)
    finally:
        isolate.close()
    return isolate_ms, step_us, post_us, call_us


def _mean_us(call, count):
    for _ in range(count):  # past V8's optimizing compiles, which run on threads of this process
        call()
    started = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - started) / count * 1e6
