"""Tubeway's benchmarks (``make bench``): real processes on loopback, one table, one JSON file.

Benchmarks (``--only NAME``, repeatable or comma-separated):

* ``http``: single-job HTTP submits next to a bare Tornado handler (bench_http.py)
* ``e2e``: 100,000 no-op jobs submitted and drained by 2 workers (bench_throughput.py)
* ``latency``: dispatch and round-trip latency of single jobs on an idle system (bench_latency.py)
* ``memory``: broker RSS with 1,000,000 queued jobs (bench_memory.py)
* ``callbacks``: 20,000 ``http`` jobs delivered to a fast local sink by 2 workers (bench_callbacks.py)
* ``fraction``: a fraction of 10^6 leaves delivered to the sink, memory sampled; first leaf of 10^9 ids
  (bench_fraction.py)
* ``javascript``: 20,000 trivial ``javascript`` runs by 2 workers; one fresh isolate, one warm run and its
  check, in process (bench_javascript.py)
* ``bullmq``: 20,000 jobs added over the BullMQ proxy API (1,000 per request) and drained through a
  registered endpoint, beside as many ``http`` jobs to the same sink (bench_bullmq.py)
* ``commands``: 2,000 ``true`` shell commands by 2 workers beside a bare ``subprocess.run`` loop
  (bench_commands.py)

``--quick`` runs 10x smaller counts (and 2 s HTTP runs) for trying things out;
``--load-tool python`` forces the Python HTTP load generator even when wrk is installed. The
results also go to ``tests/perf/last-run.json``. Exit code 1 when a benchmark could
not run; unmet goals only show in the table.
"""
import argparse
import signal
import sys
import time
import traceback

import bench_bullmq
import bench_callbacks
import bench_commands
import bench_fraction
import bench_http
import bench_javascript
import bench_latency
import bench_memory
import bench_throughput
import loadgen
import report
from harness import HERE

BENCHMARKS = {module.NAME: module for module in (bench_http, bench_throughput, bench_latency, bench_memory,
                                                    bench_callbacks, bench_fraction, bench_javascript,
                                                    bench_commands, bench_bullmq)}
DEFAULT_JSON = HERE / "last-run.json"


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Run Tubeway's benchmarks.")
    parser.add_argument("--quick", action="store_true", help="10x smaller counts, for trying things out")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help=f"run only these benchmarks (of: {', '.join(BENCHMARKS)}); repeatable or a comma list")
    parser.add_argument("--load-tool", choices=("auto", "wrk", "python"), default="auto",
                        help="HTTP load generator (default: wrk when installed, else Python)")
    parser.add_argument("--json", default=str(DEFAULT_JSON), help="where to write the results (default: %(default)s)")
    args = parser.parse_args(argv)
    names = [name.strip() for value in args.only for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    args.names = names or list(BENCHMARKS)
    return args


def _terminate(signum, frame):
    # Turn SIGTERM into SystemExit so every Stack's finally stops its processes.
    sys.exit(128 + signum)


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    if args.load_tool != "auto":
        loadgen.PREFERRED = args.load_tool
    facts = report.machine(loadgen.tool_version())
    rows, failed = [], []
    started = time.monotonic()
    for name in args.names:
        print(f"running {name}{' (quick)' if args.quick else ''} ...", file=sys.stderr, flush=True)
        bench_started = time.monotonic()
        try:
            BENCHMARKS[name].run(rows, quick=args.quick)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
            rows.append(report.Row(name, "did not complete", error=f"{type(exc).__name__}: {exc}"))
        print(f"  {name} took {time.monotonic() - bench_started:.0f} s", file=sys.stderr, flush=True)
    seconds = time.monotonic() - started
    meta = {"quick": args.quick, "benchmarks": args.names, "seconds": round(seconds, 1),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    report.write_json(args.json, rows, facts, meta)  # first, so a closed stdout cannot lose it
    print(report.render(rows, facts, seconds))
    print(f"results written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
