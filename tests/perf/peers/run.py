"""Tubeway against Huey, RQ, Celery and BullMQ in one run (``make bench-peers``); writes tests/perf/RESULTS.md.

Each peer is installed into its own environment under ``build/peers/`` (``envs.py``), started on
loopback with 2 worker processes (``peerdefs.py``), and driven through its own client by the same
workload code as Tubeway (``drivers/``). Workloads (``--only``): ``noop`` (100,000 no-op jobs),
``sleep`` (10,000 jobs of 10 ms), ``delayed`` (10,000 jobs due in 1 to 5 s), ``latency`` (1,000
single jobs), ``http`` (Tubeway's HTTP enqueue beside a bare Tornado handler). ``--scale 0.1``
runs a tenth of the counts; a peer that cannot be installed is reported and the others still run.
Systems take turns workload by workload, so each row's figures are taken close together in time.
"""
import argparse
import importlib.metadata
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/perf: harness, loadgen, report

import envs  # noqa: E402
import loadgen  # noqa: E402
import peerdefs  # noqa: E402
import redisdb  # noqa: E402
import report  # noqa: E402
import results  # noqa: E402
import tubeway_peer  # noqa: E402
from harness import HERE, ROOT, Stack  # noqa: E402

COUNTS = {"noop": 100_000, "sleep": 10_000, "delayed": 10_000, "latency": 1_000}
WORKLOADS = [*COUNTS, "http"]
PEERS = ["tubeway", *peerdefs.PEERS]
HTTP_SECONDS = 10.0
TUBEWAY_NOTE = ("`tubeway broker` + `tubeway worker --processes 2` (default `worker_threads` 4 per process, prefetch "
                "256), SQLite with its durable default `synchronous=FULL`; its own broker client, batches of 1,000 "
                "per `submit`; delayed jobs with `run_at`; the `stamp` kind from a plugin. Workload 5: `tubeway up "
                "--processes 2 --http-processes 1`.")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every count (default 1)")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="workloads, comma separated (default: all)")
    parser.add_argument("--peers", default=",".join(PEERS), help="systems, comma separated (default: all)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one drain may take (default 120)")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"), help="the report (default: %(default)s)")
    parser.add_argument("--build-dir", default=str(ROOT / "build" / "peers"), help="where peers are installed")
    parser.add_argument("--delays", default="1,5", help="delay range of the delayed workload, s (default 1,5)")
    parser.add_argument("--http-seconds", type=float, help="load time of workload 5 (default 10 x scale, >= 1)")
    parser.add_argument("--redis-db", type=int, default=redisdb.DEFAULT_DB, help="first of our 2 Redis databases")
    args = parser.parse_args(argv)
    args.workloads = [w for w in args.only.split(",") if w]
    args.peer_names = [p for p in args.peers.split(",") if p]
    for chosen, known, what in ((args.workloads, WORKLOADS, "workload"), (args.peer_names, PEERS, "peer")):
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            parser.error(f"unknown {what}(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    args.peer_names = [p for p in PEERS if p in args.peer_names]
    args.counts = {w: max(1, round(n * args.scale)) for w, n in COUNTS.items()}
    args.http_seconds = args.http_seconds or max(1.0, HTTP_SECONDS * min(args.scale, 1.0))
    args.delay_range = tuple(float(x) for x in args.delays.split(","))
    return args


def one_line(exc):
    """An error in one line for the report."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " / ")
    return text if len(text) <= 400 else text[:400] + " ..."


def tubeway_workload(args, workload):
    """One workload on Tubeway: its figures."""
    if workload == "http":
        return tubeway_peer.run_http(args.http_seconds)
    figures = tubeway_peer.run(workload, args.counts[workload], args.timeout, args.delay_range, args.build_dir)
    if workload == "latency":
        figures.update(tubeway_peer.run_http_latency(args.counts[workload], args.timeout, args.build_dir))
    return figures


def install_peer(name, args, redis, info):
    """Install one peer; its environment, or None when it could not be installed (said in ``info``)."""
    peer = peerdefs.PEERS[name]
    info["note"] = peer.note
    log(f"installing {name}")
    try:
        env = envs.install(args.build_dir, peer.env)
    except envs.InstallFailed as exc:
        info["status"] = f"not installed: {one_line(exc)}"
        return None
    info["version"] = env.version
    info["durability"] = redis.describe() if peer.uses_redis else "-"
    return env


def peer_workload(name, env, args, redis, info, workload):
    """One workload on one peer: its figures."""
    peer = peerdefs.PEERS[name]
    with Stack() as stack:
        client_args = [args.counts[workload], args.timeout, *args.delay_range]
        figures = peerdefs.run(peer, env, workload, client_args, redis if peer.uses_redis else None, stack,
                               args.timeout + 120)
    if not peer.uses_redis:
        info["durability"] = figures.get("durability", "-")
    return figures


def run_all(args, redis, found, info):
    """Workload by workload, every system in turn, so a workload's figures are taken close together in time."""
    envs_by_peer = {name: install_peer(name, args, redis, info[name]) for name in args.peer_names if name != "tubeway"}
    if "tubeway" in info:
        info["tubeway"].update(version=importlib.metadata.version("tubeway"), durability=tubeway_peer.DURABILITY,
                               note=TUBEWAY_NOTE)
    for workload in args.workloads:
        for name in args.peer_names:
            if name != "tubeway" and workload == "http":
                continue  # the peers have no HTTP API of their own
            if name != "tubeway" and envs_by_peer[name] is None:
                found[name][workload] = {"missing": "not installed"}
                continue
            log(f"{name} {workload}")
            try:
                found[name][workload] = (tubeway_workload(args, workload) if name == "tubeway" else
                                         peer_workload(name, envs_by_peer[name], args, redis, info[name], workload))
            except Exception as exc:  # one failure must not hide the other figures
                traceback.print_exc()
                found[name][workload] = {"error": one_line(exc)}


def log(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main(argv=None):
    args = parse_args(argv)
    started = time.monotonic()
    found, info = {p: {} for p in args.peer_names}, {p: {} for p in args.peer_names}
    with Stack() as redis_stack:
        redis = None
        if any(peerdefs.PEERS[p].uses_redis for p in args.peer_names if p != "tubeway"):
            redis = redisdb.redis_for(redis_stack, args.redis_db)
        run_all(args, redis, found, info)
        if redis is not None:
            redis.flush()
    meta = {"command": "run.py " + " ".join(argv if argv is not None else sys.argv[1:]), "date": results.today(),
            "seconds": time.monotonic() - started, "timeout": args.timeout, "delays": args.delay_range}
    machine = report.machine(loadgen.tool_version())
    counts = {**args.counts, "http": 0}
    text = results.render(found, args.peer_names, counts, info, machine, meta)
    Path(args.out).write_text(text + "\n")
    print(results.table(found, args.peer_names, counts, args.delay_range))
    print(f"written to {args.out}")
    return 1 if any("error" in f for figures in found.values() for f in figures.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
