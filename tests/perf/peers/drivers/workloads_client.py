"""The four client-side workloads, the same code for Tubeway and every Python peer.

Standard library only: it runs inside each peer's own environment (``pyclient.py``) and
in Tubeway's. A *client* adapter gives it five calls:

* ``enqueue(task, count)``: ``count`` jobs of ``task`` (``noop``, ``sleep``, ``stamp``) in the
  system's own batches, returns nothing;
* ``enqueue_delayed(delays)``: one ``stamp`` job per delay (seconds), each due at the
  ``time.monotonic()`` taken just before its enqueue call plus its delay; returns
  ``[(handle, due), ...]``;
* ``enqueue_one(task)``: one job, its handle;
* ``done_count()``: results recorded so far;
* ``wait(handle, timeout)``: the job's result once recorded; ``value(handle)``: the recorded result,
  None when there is none yet.

A ``stamp`` job's first statement returns ``time.monotonic()`` (CLOCK_MONOTONIC, one clock for
every process of the machine), so its start is compared with a client ``time.monotonic()``.
"""
import time

WARMUP = 20
POLL = 0.02
LATENCY_TIMEOUT = 10.0


def percentile(sorted_values, pct):
    """Nearest-rank percentile of sorted values (NaN when empty)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


def warm_up(client):
    """Run a few ``stamp`` jobs one by one: the workers are up and every connection is open."""
    for _ in range(WARMUP):
        client.wait(client.enqueue_one("stamp"), 60.0)


def wait_done(client, target, deadline):
    """Poll ``done_count`` until it reaches ``target``; raise at ``deadline`` (monotonic)."""
    while True:
        done = client.done_count()
        if done >= target:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{done} of {target} results recorded when the time ran out")
        time.sleep(POLL)


def drain(client, task, count, timeout, chunk=1000):
    """Jobs/s from the first enqueue until the last result is recorded.

    When ``timeout`` s pass first (enqueueing included), the figure is the results recorded
    by then over the time taken, marked ``partial``.
    """
    before = client.done_count()
    started = time.monotonic()
    deadline = started + timeout
    sent = 0
    while sent < count and time.monotonic() < deadline:
        client.enqueue(task, min(chunk, count - sent))
        sent += min(chunk, count - sent)
    figures = {"enqueue_rate": sent / (time.monotonic() - started)}
    try:
        wait_done(client, before + count, deadline)
    except TimeoutError:
        done, elapsed = client.done_count() - before, time.monotonic() - started
        return {**figures, "value": done / elapsed, "seconds": elapsed, "partial": f"{done} of {count}"}
    elapsed = time.monotonic() - started
    return {**figures, "value": count / elapsed, "seconds": elapsed}


def delays_for(count, low, high):
    """``count`` delays spread evenly over [low, high] s, in a shuffled but repeatable order."""
    step = 7919 if count % 7919 else 7907
    return [low + (high - low) * ((i * step) % count) / max(count - 1, 1) for i in range(count)]


def delayed(client, count, timeout, low=1.0, high=5.0):
    """Lateness of the actual start of delayed jobs: p50 and p99 in ms.

    Jobs not started when ``timeout`` s have passed after the last one was due count with
    their lateness at that moment (a lower bound), and the figures are marked ``partial``.
    """
    before = client.done_count()
    handles = client.enqueue_delayed(delays_for(count, low, high))
    figures = {}
    try:
        wait_done(client, before + count, max(due for _, due in handles) + timeout)
    except TimeoutError:
        figures["partial"] = "some jobs had not started by the time limit"
    now = time.monotonic()
    starts = [(client.value(handle), due) for handle, due in handles]
    lateness = sorted(((now if start is None else start) - due) * 1e3 for start, due in starts)
    return {**figures, "p50": percentile(lateness, 50), "p99": percentile(lateness, 99), "min": lateness[0],
            "max": lateness[-1], "not_started": sum(start is None for start, _ in starts)}


def latency(client, count, timeout):
    """One job at a time on an idle system: from ``t0`` before the enqueue call to the job's start, ms."""
    values = []
    deadline = time.monotonic() + timeout
    for _ in range(count):
        t0 = time.monotonic()
        handle = client.enqueue_one("stamp")
        values.append((client.wait(handle, LATENCY_TIMEOUT) - t0) * 1e3)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(values)} of {count} single jobs when the time ran out")
    values.sort()
    return {"p50": percentile(values, 50), "p99": percentile(values, 99)}


def run(client, workload, count, timeout, delays=(1.0, 5.0)):
    """Warm up, then run one workload; returns its figures as a dict."""
    warm_up(client)
    if workload == "noop":
        return drain(client, "noop", count, timeout)
    if workload == "sleep":
        return drain(client, "sleep", count, timeout)
    if workload == "delayed":
        return delayed(client, count, timeout, *delays)
    if workload == "latency":
        return latency(client, count, timeout)
    raise ValueError(f"unknown workload {workload!r}")
