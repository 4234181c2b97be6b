"""Benchmark ``http``: single-job ``POST /api/v1/jobs`` next to a bare Tornado handler.

Both take 32 concurrent keep-alive connections for ~10 s from the same load tool
(wrk with ``post.lua`` when installed, else the Python generator), after a short
warm-up. Tubeway runs as ``tubeway up --processes 2 --http-processes 1``, so its
workers drain the submitted jobs meanwhile; the bare app is one Tornado process
answering 201 with a small JSON body (``bare_tornado.py``). Goal: Tubeway reaches at
least half the bare handler's rate.
"""
import sys

import loadgen
from harness import HERE, Stack, free_port, wait_http
from report import Row

NAME = "http"
CONNECTIONS = 32
SECONDS = 10.0
WARMUP_SECONDS = 2.0
RATIO_GOAL = 0.5


def run(rows, quick=False):
    """Append this benchmark's rows to ``rows``."""
    seconds = 2.0 if quick else SECONDS
    tool = loadgen.tool_name()
    with Stack() as stack:
        port = free_port()
        stack.start("bare-tornado", [sys.executable, str(HERE / "bare_tornado.py"), str(port)])
        wait_http(port, processes=stack.processes)
        bare = measure(f"http://127.0.0.1:{port}/api/v1/jobs", seconds, tool)
    with Stack() as stack:
        stack.tubeway("up", processes=2, http_processes=1)
        stack.wait_broker(workers=2)
        stack.wait_http()
        tubeway = measure(f"{stack.http_url}/api/v1/jobs", seconds, tool)
        for process in stack.processes:
            process.check_alive()
    label = f"{CONNECTIONS} conns, {tool}"
    rows.append(Row(NAME, f"tubeway POST /api/v1/jobs ({label})", tubeway.rate, "req/s"))
    rows.append(Row(NAME, f"bare Tornado POST ({label})", bare.rate, "req/s"))
    rows.append(Row(NAME, "tubeway / bare Tornado", tubeway.rate / bare.rate if bare.rate else float("nan"),
                    "ratio", (">=", RATIO_GOAL)))
    rows.append(Row(NAME, "tubeway latency p50", tubeway.p50_ms, "ms"))
    rows.append(Row(NAME, "tubeway latency p99", tubeway.p99_ms, "ms"))
    rows.append(Row(NAME, "bare Tornado latency p50", bare.p50_ms, "ms"))
    rows.append(Row(NAME, "tubeway errors (non-2xx or socket)", tubeway.errors, "requests", ("<=", 0)))


def measure(url, seconds, tool):
    """Warm up, then measure one target."""
    loadgen.post_load(url, CONNECTIONS, WARMUP_SECONDS, tool)
    return loadgen.post_load(url, CONNECTIONS, seconds, tool)
