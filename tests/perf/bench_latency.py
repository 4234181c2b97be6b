"""Benchmark ``latency``: one job at a time on an idle broker with 2 idle workers.

Each of 1,000 single ``noop`` jobs is submitted, then waited for (``client.wait(id, 5)``)
before the next. Reported: dispatch latency (the record's ``started_at - created_at``,
both stamped by the broker) and the client's round trip from submit to ``wait``
returning the finished job.
"""
import time

from harness import Stack, percentile
from report import Row
from tubeway.core.job import normalize_spec

NAME = "latency"
TOTAL = 1_000
WARMUP = 10
WORKERS = 2


def run(rows, quick=False):
    """Append this benchmark's rows to ``rows``."""
    total = TOTAL // 10 if quick else TOTAL
    spec = normalize_spec({"kind": "noop"})
    dispatch, round_trip, in_broker = [], [], []
    with Stack() as stack:
        stack.tubeway("broker")
        stack.wait_broker()
        stack.tubeway("worker", processes=WORKERS)
        stack.wait_broker(workers=WORKERS)
        client = stack.client()
        for index in range(WARMUP + total):
            started = time.perf_counter()
            job_id = client.submit([spec])["ids"][0]
            record = client.wait(job_id, 5)
            elapsed = time.perf_counter() - started
            if record["state"] != "done":
                raise AssertionError(f"job {job_id} is {record['state']} after 5 s: {record.get('error')}")
            if index >= WARMUP:
                dispatch.append((record["started_at"] - record["created_at"]) * 1e3)
                in_broker.append((record["finished_at"] - record["created_at"]) * 1e3)
                round_trip.append(elapsed * 1e3)
    for values in (dispatch, round_trip, in_broker):
        values.sort()
    what = f"{total} single jobs"
    rows.append(Row(NAME, f"dispatch p50 (started_at - created_at), {what}", percentile(dispatch, 50), "ms",
                    ("<", 2)))
    rows.append(Row(NAME, "dispatch p99", percentile(dispatch, 99), "ms", ("<", 5)))
    rows.append(Row(NAME, "round trip p50 (submit -> wait returns)", percentile(round_trip, 50), "ms"))
    rows.append(Row(NAME, "round trip p99", percentile(round_trip, 99), "ms"))
    rows.append(Row(NAME, "finished_at - created_at p50", percentile(in_broker, 50), "ms"))
