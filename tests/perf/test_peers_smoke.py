"""Smoke test of ``make bench-peers``: the harness with tiny counts against Tubeway alone.

No timing assertions: it checks that the harness runs end to end on real processes and
writes a table with a row of numbers per workload, so it cannot rot unnoticed.
"""
import re
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parent / "peers" / "run.py"
WORKLOAD_ROWS = ["1. ", "2. ", "3. ", "4. ", "5. "]


def test_harness_runs_tubeway_alone(tmp_path):
    out = tmp_path / "RESULTS.md"
    argv = [sys.executable, str(RUN), "--peers", "tubeway", "--scale", "0.0003", "--delays", "0.05,0.1",
            "--http-seconds", "0.3", "--timeout", "30", "--out", str(out), "--build-dir", str(tmp_path / "build")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ") and line[2:3].isdigit()]
    for prefix in WORKLOAD_ROWS:
        mine = [row for row in rows if row.startswith("| " + prefix)]
        assert mine, f"no row for workload {prefix.strip()} in:\n{out.read_text()}"
        tubeway_cell = mine[0].split("|")[3]
        assert re.search(r"\d", tubeway_cell), mine[0]
