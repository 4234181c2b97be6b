"""Benchmark results: rows with goals, the machine they ran on, the table and the JSON file."""
import dataclasses
import json
import math
import operator
import os
import platform
import sqlite3

OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}

#: Peer figures measured earlier on this machine with 2 worker processes (quoted by the issue).
PEERS = [
    "BullMQ on Redis: 6,600-8,900 no-op jobs/s, 2.2 ms p50 latency",
    "Huey on SQLite: 930-1,300 jobs/s, 51 ms p50",
    "Celery on Redis: 580 jobs/s, 3.5 ms p50",
]


@dataclasses.dataclass
class Row:
    """One measured figure, with its goal (``(op, bound)``) when it has one, or the error that stopped it."""

    bench: str
    name: str
    value: float = None
    unit: str = ""
    goal: tuple = None
    error: str = None

    @property
    def met(self):
        """True/False against the goal; None without a goal or a value."""
        if self.goal is None or self.value is None or math.isnan(self.value):
            return None
        op, bound = self.goal
        return bool(OPS[op](self.value, bound))

    def goal_text(self):
        """``">= 0.5"``, or ``"-"``."""
        return "-" if self.goal is None else f"{self.goal[0]} {self.goal[1]:g}"

    def met_text(self):
        """``yes``/``NO``/``ERROR``/``-``."""
        if self.error:
            return "ERROR"
        return {True: "yes", False: "NO", None: "-"}[self.met]

    def value_text(self):
        """The value with sensible precision."""
        if self.value is None:
            return "-"
        if math.isnan(self.value):
            return "nan"
        if abs(self.value) >= 100:
            return f"{self.value:,.0f}"
        if abs(self.value) >= 10:
            return f"{self.value:.1f}"
        return f"{self.value:.3g}" if self.value else "0"

    def as_dict(self):
        """The JSON form."""
        value = None if self.value is None or math.isnan(self.value) else self.value
        return {"bench": self.bench, "name": self.name, "value": value, "unit": self.unit,
                "goal": self.goal_text() if self.goal else None, "met": self.met, "error": self.error}


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib():
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def machine(load_tool):
    """What the figures depend on: CPU, cores, RAM, Python, SQLite, synchronous mode, load tool."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sqlite": sqlite3.sqlite_version,
        "synchronous": "FULL (Tubeway's default) unless a row names NORMAL",
        "kernel": platform.release(),
        "load_tool": load_tool,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def render(rows, facts, seconds):
    """The printed report: one table, the machine, the peers' figures."""
    header = ("benchmark", "value", "unit", "goal", "met?")
    lines = [(f"{r.bench}: {r.name}", r.value_text(), r.unit, r.goal_text(), r.met_text()) for r in rows]
    widths = [max(len(line[i]) for line in [header] + lines) for i in range(5)]
    align = (str.ljust, str.rjust, str.ljust, str.ljust, str.ljust)

    def fmt(cells):
        return "  ".join(f(cell, w) for f, cell, w in zip(align, cells, widths)).rstrip()

    out = [fmt(header), fmt(["-" * w for w in widths])] + [fmt(line) for line in lines]
    for r in rows:
        if r.error:
            out.append(f"\nERROR in {r.bench}: {r.error}")
    out.append("")
    out.append("machine: " + ", ".join([
        f"{facts['cpu']}", f"{facts['cores']} cores", f"{facts['ram_gib']} GiB RAM", facts["python"],
        f"SQLite {facts['sqlite']}", f"synchronous={facts['synchronous']}", f"kernel {facts['kernel']}"]))
    load = "/".join(f"{x:g}" for x in facts["loadavg_at_start"])
    out.append(f"load tool: {facts['load_tool']}; load average at start {load} (1/5/15 min); total {seconds:.0f} s")
    out.append("reference, peers measured earlier on this machine with 2 worker processes:")
    out.extend(f"  {peer}" for peer in PEERS)
    return "\n".join(out)


def write_json(path, rows, facts, meta):
    """Write the run as JSON: ``{"machine", "results", "peers", ...meta}``."""
    data = {**meta, "machine": facts, "results": [r.as_dict() for r in rows], "peers": PEERS}
    with open(path, "w") as out:
        json.dump(data, out, indent=2)
        out.write("\n")
