"""Torture-test fixtures: the storage backends, and the acceptance kit (twkit, sink) made importable.

The torture test drives real processes with the acceptance tests' :class:`twkit.Cluster`
and records callbacks with their :class:`sink.Sink`, so their folder joins ``sys.path``.
Each run's summary line is also printed in pytest's terminal summary (so ``make test``
and ``make torture`` show it without ``-s``).
"""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "acceptance"))

SUMMARIES = []


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request):
    """``(name, flags)``: the storage a run uses; PostgreSQL gets a fresh schema (skipped when absent)."""
    if request.param == "sqlite":
        return "sqlite", []
    return "postgresql", ["--db", request.getfixturevalue("postgres_url")]


@pytest.fixture
def summaries():
    """A list the test appends its summary line to; shown in the terminal summary."""
    return SUMMARIES


def pytest_terminal_summary(terminalreporter):
    if SUMMARIES:
        terminalreporter.write_sep("-", "torture")
        for line in SUMMARIES:
            terminalreporter.write_line(line)
