"""Benchmark ``commands``: ``true`` shell commands end to end with 2 workers, beside a bare subprocess loop.

``tubeway broker`` and ``tubeway worker --processes 2 --enable-commands`` run as separate
processes; 2,000 jobs of kind ``command`` (``true``, no limits, each in its process group)
go in through the native ``BrokerClient.submit`` in batches of 500, and the clock runs
from the first submit until the broker reports them all done. In the same run, this
process times ``subprocess.run(["/bin/sh", "-c", "true"])`` in a loop: the goal is at
least 0.7 of that rate.
"""
import subprocess
import time

from harness import Stack, count_label, wait_all_done
from report import Row
from tubeway.core.job import normalize_spec

NAME = "commands"
TOTAL = 2_000
BATCH = 500
WORKERS = 2
GOAL_RATIO = 0.7
MIN_RATE = 20  # commands/s below which we stop waiting: the deadline is TOTAL / MIN_RATE


def run(rows, quick=False):
    """Append this benchmark's rows to ``rows``."""
    total = TOTAL // 10 if quick else TOTAL
    bare = bare_rate(total)
    rate = drain(total)
    rows.append(Row(NAME, f"{count_label(total)} `true` commands, {WORKERS} workers: end to end", rate, "cmds/s"))
    rows.append(Row(NAME, "  bare subprocess.run(['/bin/sh', '-c', 'true']) loop, this process", bare, "cmds/s"))
    rows.append(Row(NAME, "  Tubeway / bare loop", rate / bare, "x", (">=", GOAL_RATIO)))


def bare_rate(total):
    """Commands per second of a plain loop of ``subprocess.run``."""
    started = time.perf_counter()
    for _ in range(total):
        subprocess.run(["/bin/sh", "-c", "true"], check=True)
    return total / (time.perf_counter() - started)


def drain(total):
    """Commands per second from the first submit until all are done."""
    specs = [normalize_spec({"kind": "command", "payload": {"command": "true"}}) for _ in range(total)]
    with Stack() as stack:
        stack.tubeway("broker")
        stack.wait_broker()
        stack.tubeway("worker", processes=WORKERS, enable_commands=True)
        stack.wait_broker(workers=WORKERS)
        client = stack.client()
        started = time.perf_counter()
        for first in range(0, total, BATCH):
            client.submit(specs[first:first + BATCH], timeout=60)
        wait_all_done(client, total, total / MIN_RATE, f"{total} commands done", stack)
        return total / (time.perf_counter() - started)
