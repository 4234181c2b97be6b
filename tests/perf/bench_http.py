"""Benchmark ``http``: single-job ``POST /api/v1/jobs`` next to a bare Tornado handler.

Both take 32 concurrent keep-alive connections for ~10 s from the same load tool
(wrk with ``post.lua`` when installed, else the Python generator), after a short
warm-up, in alternating rounds (the best round of each counts), so load from
elsewhere on the machine skews both alike. Tubeway runs as
``tubeway up --processes 2 --http-processes 1``, so its workers drain the submitted
jobs meanwhile (each round starts with none left); the bare app is one Tornado
process answering 201 with a small JSON body (``bare_tornado.py``). Goal: Tubeway
reaches at least half the bare handler's rate.
"""
import sys

import loadgen
from harness import HERE, Stack, free_port, poll, state_counts, wait_http
from report import Row

NAME = "http"
CONNECTIONS = 32
SECONDS = 10.0
ROUNDS = 2
WARMUP_SECONDS = 2.0
RATIO_GOAL = 0.5
DRAIN_TIMEOUT = 120.0


def run(rows, quick=False):
    """Append this benchmark's rows to ``rows``."""
    seconds = 2.0 if quick else SECONDS
    tool = loadgen.tool_name()
    with Stack() as bare_stack, Stack() as stack:
        port = free_port()
        bare_stack.start("bare-tornado", [sys.executable, str(HERE / "bare_tornado.py"), str(port)])
        stack.tubeway("up", processes=2, http_processes=1)
        wait_http(port, processes=bare_stack.processes)
        stack.wait_broker(workers=2)
        stack.wait_http()
        targets = {"bare": f"http://127.0.0.1:{port}/api/v1/jobs", "tubeway": f"{stack.http_url}/api/v1/jobs"}
        loads = {name: [] for name in targets}
        for url in targets.values():
            loadgen.post_load(url, CONNECTIONS, WARMUP_SECONDS, tool)
        for _ in range(ROUNDS):  # alternate, so a burst of load from elsewhere hits both alike
            wait_drained(stack)
            for name, url in targets.items():
                loads[name].append(loadgen.post_load(url, CONNECTIONS, seconds / ROUNDS, tool))
        for process in stack.processes + bare_stack.processes:
            process.check_alive()
    bare, tubeway = (max(loads[name], key=lambda load: load.rate) for name in ("bare", "tubeway"))
    label = f"{CONNECTIONS} conns, {tool}, best of {ROUNDS} x {seconds / ROUNDS:g} s"
    rows.append(Row(NAME, f"tubeway POST /api/v1/jobs ({label})", tubeway.rate, "req/s"))
    rows.append(Row(NAME, "bare Tornado POST (same)", bare.rate, "req/s"))
    rows.append(Row(NAME, "tubeway / bare Tornado", tubeway.rate / bare.rate if bare.rate else float("nan"),
                    "ratio", (">=", RATIO_GOAL)))
    rows.append(Row(NAME, "tubeway latency p50", tubeway.p50_ms, "ms"))
    rows.append(Row(NAME, "tubeway latency p99", tubeway.p99_ms, "ms"))
    rows.append(Row(NAME, "bare Tornado latency p50", bare.p50_ms, "ms"))
    errors = sum(load.errors for load in loads["tubeway"])
    rows.append(Row(NAME, "tubeway errors (non-2xx or socket), all rounds", errors, "requests", ("<=", 0)))


def wait_drained(stack):
    """Wait until the workers have run every job submitted so far (so the next round starts idle)."""
    client = stack.client()

    def drained():
        counts = state_counts(client)
        return counts.get("queued", 0) + counts.get("running", 0) == 0

    poll(drained, DRAIN_TIMEOUT, "submitted jobs drained", interval=0.1, processes=stack.processes)
