"""``tests/perf/RESULTS.md``: one table (workload rows; Tubeway, each peer with the ratio Tubeway/peer),
the machine, each system's version and durability, and how each was configured.
"""
import math
import time

from harness import count_label

#: Column order and headings.
LABELS = {"tubeway": "Tubeway", "huey": "Huey", "rq": "RQ (Worker)", "rq-simple": "RQ (SimpleWorker)",
          "celery": "Celery", "bullmq": "BullMQ"}
#: ``(workload, figure, label, unit)``; the label's ``{n}`` is the workload's count.
ROWS = [
    ("noop", "value", "1. {n} no-op jobs, first enqueue to last result", "jobs/s"),
    ("sleep", "value", "2. {n} jobs sleeping 10 ms, first enqueue to last result", "jobs/s"),
    ("delayed", "p50", "3. {n} jobs delayed {d} s: lateness of the start, p50", "ms"),
    ("delayed", "p99", "3. same, p99", "ms"),
    ("latency", "p50", "4. single-job latency on an idle system, {n} jobs, p50", "ms"),
    ("latency", "p99", "4. same, p99", "ms"),
    ("latency", "http_p50", "4. same through Tubeway's POST /api/v1/jobs, p50", "ms"),
    ("latency", "http_p99", "4. same through POST /api/v1/jobs, p99", "ms"),
    ("http", "native", "5. HTTP single-job enqueue, 32 connections, native API", "req/s"),
    ("http", "bullmq", "5. same, BullMQ route", "req/s"),
]


def number(value):
    """A figure with sensible precision."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) >= 0.01 else f"{value:.2g}"


def _figure(figures, figure):
    if figures is None:
        return None, "-"
    if "error" in figures or "missing" in figures:
        return None, figures.get("missing", "error")
    if figures.get(figure) is None:
        return None, figures.get(f"{figure}_note", "-")
    value = figures[figure]
    return value, number(value) + ("*" if figures.get("partial") else "")


def table(results, peers, counts, delays=(1, 5)):
    """The Markdown table: a row per workload figure, a column per system; peers' cells carry Tubeway/peer."""
    head = ["workload", "unit", *(LABELS[p] + ("" if p == "tubeway" else " (Tubeway/peer)") for p in peers)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for workload, figure, label, unit in ROWS:
        ours, _ = _figure(results.get("tubeway", {}).get(workload), figure)
        cells = [label.format(n=count_label(counts.get(workload, 0)), d="%g-%g" % tuple(delays)), unit]
        for peer in peers:
            value, text = _figure(results.get(peer, {}).get(workload), figure)
            if peer != "tubeway" and value and ours is not None:
                text += f" ({ours / value:.2f})"
            cells.append(text)
        if any(cell != "-" for cell in cells[2:]):  # a row no system measured is left out
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(results, peers, counts, info, machine, meta):
    """The whole RESULTS.md text."""
    out = ["# Tubeway against its peers", "",
           f"Written by `make bench-peers` (`{meta['command']}`) on {meta['date']}, in {meta['seconds']:.0f} s. "
           "Every system ran on this machine in the same run (workload by workload, each system in turn), on "
           "loopback, with 2 worker processes, measured "
           "from its own client the same way (`tests/perf/peers/drivers/workloads_client.py` and its Node twin). "
           "For throughput higher is better, for lateness and latency lower is better; the ratio in brackets "
           "is Tubeway's figure over the peer's. A `*` marks a run stopped at the time limit "
           f"({meta['timeout']:g} s, enqueueing included; for workload 3, {meta['timeout']:g} s after the last job "
           "was due): a rate is then the results recorded by that moment over the time taken, and a lateness "
           "counts the jobs not yet started with their lateness at that moment (both favour the peer).", "",
           table(results, peers, counts, meta["delays"]), ""]
    http = results.get("tubeway", {}).get("http")
    if http and "error" not in http:
        out += [f"Workload 5 beside a bare Tornado handler in the same run (load tool: {http['tool']}): "
                f"bare Tornado {number(http['bare'])} req/s; Tubeway's native API {number(http['native'])} req/s "
                f"= {http['native'] / http['bare']:.2f} of it (p50 {number(http['native_p50'])} ms, "
                f"{http['errors']} errors); its BullMQ route {number(http['bullmq'])} req/s = "
                f"{http['bullmq'] / http['bare']:.2f}. The peers have no HTTP API of their own.", ""]
    out += ["## Machine", ""] + [f"- {key}: {value}" for key, value in machine.items()] + [""]
    out += ["## Versions and durability", "", "| system | version | durability | status |", "|---|---|---|---|"]
    out += [f"| {LABELS[p]} | {info[p].get('version', '-')} | {info[p].get('durability', '-')} | "
            f"{info[p].get('status', 'ran')} |" for p in peers] + [""]
    out += ["## Configuration", ""] + [f"- **{LABELS[p]}**: {info[p].get('note', '')}" for p in peers] + [""]
    errors = [(p, w, f["error"]) for p in peers for w, f in results.get(p, {}).items() if "error" in f]
    if errors:
        out += ["## Errors", ""] + [f"- {LABELS[p]}, {w}: {e}" for p, w, e in errors] + [""]
    return "\n".join(out)


def today():
    """The date and time of the run, UTC."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
