"""Shared test helpers: the markers and a ``free_port`` fixture.

Markers (also declared in pyproject.toml): ``acceptance``, ``integration``,
``postgres``, ``torture``, ``perf`` (deselected by default; ``make bench`` runs the benchmarks).
"""
import os
import socket
import uuid

import pytest

PG_URL = os.environ.get("TUBEWAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

MARKERS = {
    "acceptance": "real Tubeway processes driven over HTTP (slower)",
    "integration": "broker and workers in-process over real sockets",
    "postgres": "needs a PostgreSQL server (skipped when none answers)",
    "perf": "benchmarks against peer job servers (run with `make bench`)",
    "torture": "kill -9 chaos with every dialect's load (TORTURE_CYCLES=100 with `make torture`)",
}

_handed_out = set()


def pytest_configure(config):
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


def find_free_port(host="127.0.0.1"):
    """A TCP port free on ``host`` now, never one handed out before in this test session."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


@pytest.fixture
def free_port():
    """A function returning a distinct free port on 127.0.0.1 each call: ``port = free_port()``."""
    return find_free_port


@pytest.fixture
def postgres_url():
    """A URL to a fresh PostgreSQL schema, dropped afterwards.

    Skips when PostgreSQL is unreachable, but fails when ``CI`` is set: CI must test it.
    """
    try:
        import psycopg2

        conn = psycopg2.connect(PG_URL, connect_timeout=3)
    except Exception as error:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI but unreachable at {PG_URL}: {error}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {error}")
    schema = f"tw_test_{uuid.uuid4().hex[:10]}"
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_URL}?search_path={schema}"
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()
