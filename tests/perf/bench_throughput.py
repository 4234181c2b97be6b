"""Benchmark ``e2e``: 100,000 no-op jobs from first submit until the broker reports them all done.

``tubeway broker`` and ``tubeway worker --processes 2`` run as separate processes.
Jobs go in through ``BrokerClient.submit`` in batches of 1,000 while the workers
drain them; the clock stops at the first ``QUEUES`` poll (every 0.2 s) that counts
them all ended. Run once with ``synchronous=FULL`` (the default) and once with NORMAL.
"""
import time

from harness import Stack, count_label, submit_batches, wait_all_done
from report import Row
from tubeway.core.job import normalize_spec

NAME = "e2e"
TOTAL = 100_000
BATCH = 1_000
WORKERS = 2
GOAL = 10_000
POLL_SECONDS = 0.2
MIN_RATE = 100  # jobs/s below which we stop waiting: the deadline is TOTAL / MIN_RATE


def run(rows, quick=False):
    """Append this benchmark's rows to ``rows``."""
    total = TOTAL // 10 if quick else TOTAL
    for synchronous in ("FULL", "NORMAL"):
        rate, enqueue_rate = drain(total, synchronous)
        rows.append(Row(NAME, f"{count_label(total)} noop jobs, {WORKERS} workers, synchronous={synchronous}",
                        rate, "jobs/s", (">=", GOAL)))
        rows.append(Row(NAME, f"  of which enqueue alone (batches of {count_label(BATCH)})", enqueue_rate, "jobs/s"))


def drain(total, synchronous):
    """``(jobs/s from first submit to all done, jobs/s of the submits alone)``."""
    spec = normalize_spec({"kind": "noop"})
    with Stack(sqlite_synchronous=synchronous) as stack:
        stack.tubeway("broker")
        stack.wait_broker()
        stack.tubeway("worker", processes=WORKERS)
        stack.wait_broker(workers=WORKERS)
        client = stack.client()
        started = time.perf_counter()
        submitting = submit_batches(client, spec, total, BATCH)

        wait_all_done(client, total, total / MIN_RATE, f"{total} jobs done", stack, interval=POLL_SECONDS)
        finished = time.perf_counter()
    return total / (finished - started), total / submitting
