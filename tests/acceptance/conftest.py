"""Acceptance fixtures: a fresh Tubeway per test, real processes, always stopped."""
import pytest

from twkit import Cluster


@pytest.fixture
def cluster(xprocess, tmp_path, free_port):
    """An unstarted cluster (ports, data dir); every process it starts is stopped afterwards."""
    c = Cluster(xprocess, tmp_path, free_port)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def server(cluster):
    """``tubeway up`` with defaults, healthy."""
    cluster.up("--processes", "2")
    return cluster
