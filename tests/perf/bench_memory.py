"""Benchmark ``memory``: broker RSS while 1,000,000 queued no-op jobs pile up.

The broker runs alone (no workers, so every job stays queued). Jobs go in through
``BrokerClient.submit`` in batches of 5,000; the broker's VmRSS is sampled before
the first batch and after each quarter. Goals: under 300 MB at 1M, and flat from
the first quarter on (a broker whose memory grows with the backlog fails).
"""
import time

from harness import Stack, count_label, rss_mb, state_counts
from report import Row
from tubeway.core.job import normalize_spec

NAME = "memory"
TOTAL = 1_000_000
BATCH = 5_000
RSS_GOAL_MB = 300
GROWTH_GOAL_MB = 50


def run(rows, quick=False):
    """Append this benchmark's rows to ``rows``."""
    total = TOTAL // 10 if quick else TOTAL
    marks = [total * q // 4 for q in range(1, 5)]
    spec = normalize_spec({"kind": "noop"})
    with Stack() as stack:
        broker = stack.tubeway("broker")
        stack.wait_broker()
        client = stack.client()
        samples = {0: rss_mb(broker.pid)}
        sent = 0
        started = time.perf_counter()
        while sent < total:
            count = min(BATCH, total - sent)
            client.submit([spec] * count, timeout=120)
            sent += count
            if sent in marks:
                samples[sent] = rss_mb(broker.pid)
        elapsed = time.perf_counter() - started
        call_started = time.perf_counter()
        queued = state_counts(client).get("queued", 0)
        queues_ms = (time.perf_counter() - call_started) * 1e3
        broker.check_alive()
    if queued != total:
        raise AssertionError(f"the broker holds {queued} queued jobs, expected {total}")
    label = count_label(total)
    for mark in [0] + marks[:-1]:
        rows.append(Row(NAME, f"broker RSS at {count_label(mark)} queued", samples[mark], "MB"))
    rows.append(Row(NAME, f"broker RSS at {label} queued", samples[total], "MB", ("<", RSS_GOAL_MB)))
    rows.append(Row(NAME, f"RSS growth {count_label(marks[0])} -> {label} (flat)",
                    samples[total] - samples[marks[0]], "MB", ("<", GROWTH_GOAL_MB)))
    rows.append(Row(NAME, f"enqueue rate, batches of {count_label(BATCH)} (FULL)", total / elapsed, "jobs/s"))
    rows.append(Row(NAME, f"QUEUES call with {label} jobs stored", queues_ms, "ms"))
