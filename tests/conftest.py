"""Shared test helpers: the markers and a ``free_port`` fixture.

Markers (also declared in pyproject.toml): ``acceptance``, ``integration``,
``postgres``, ``torture``, ``perf`` (deselected by default; ``make bench`` runs the benchmarks).
"""

import pytest

from pgschema import postgres_schema
from ports import find_free_port


MARKERS = {
    "acceptance": "real Tubeway processes driven over HTTP (slower)",
    "integration": "broker and workers in-process over real sockets",
    "postgres": "needs a PostgreSQL server (skipped when none answers)",
    "perf": "benchmarks against peer job servers (run with `make bench`)",
    "torture": "kill -9 chaos with every dialect's load (TORTURE_CYCLES=100 with `make torture`)",
}

@pytest.fixture
def free_port():
    """A function returning a distinct free port on 127.0.0.1 each call: ``port = free_port()``."""
    return find_free_port


@pytest.fixture
def postgres_url():
    """A URL to a fresh PostgreSQL schema, dropped afterwards.

    Skips when PostgreSQL is unreachable, but fails when ``CI`` is set: CI must test it.
    """
    with postgres_schema() as url:
        yield url
