"""The broker's memory stays bounded however many distinct queues it sees.

A real broker (in this process, on a SQLite file, over a real socket) runs 100,000
jobs, each in a queue of its own, to the end. Afterwards no ready window is left
(every queue is empty), the per-queue metric series are capped, and the process's
resident memory grew by no more than what the broker may keep whatever the number
of queues (see RSS_GROWTH_LIMIT).
"""
import gc
import os
import threading

import pytest

from tubeway.broker.metrics import QUEUE_SERIES_LIMIT
from tubeway.broker.reactor import Broker
from tubeway.broker.store.models import open_database
from tubeway.core import protocol as p
from tubeway.core.client import BrokerClient
from tubeway.core.job import normalize_spec
from tubeway.core.settings import load_settings
from brokerkit import ScriptedWorker, free_port

pytestmark = pytest.mark.integration

QUEUES = 100_000
BATCH = 2_000
SQLITE_CACHE_KIB = 2_000
# What may stay resident after the run whatever the number of queues: SQLite's page
# caches (SQLITE_CACHE_KIB on each of three connections: this thread's, the loop's and
# the background reader's: 6 MB at most), the capped metric series (1,000 queues, under
# 1 MB) and what the allocator keeps of the freed batches (the run grows by about 3 MB).
# Before the windows and series were bounded the broker kept about 0.9 KiB per queue
# (9 MB after 10,000 queues, about 90 MB after 100,000); a leak of 150 bytes per queue
# fails here.
RSS_GROWTH_LIMIT = 16 << 20


def rss():
    """This process's resident set size in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class SmallCacheBroker:
    """A broker thread whose SQLite connections keep small page caches, so RSS shows the broker's own memory."""

    def __init__(self, path):
        self.settings = load_settings({"broker": f"tcp://127.0.0.1:{free_port()}", "db": f"sqlite:///{path}",
                                       "heartbeat_seconds": 0.5, "worker_liveness_seconds": 30}, env={})
        self.db = open_database(self.settings.database_url, synchronous="NORMAL")
        self.db.pragma("cache_size", -SQLITE_CACHE_KIB, permanent=True)  # every connection opened later
        self.broker = Broker(self.settings, self.db)
        self.broker.recover()
        self.broker.bind(self.settings.broker)
        self.thread = threading.Thread(target=self.broker.run, daemon=True)
        self.thread.start()

    def stop(self):
        self.broker.stop()
        self.thread.join(10)
        self.broker.close(linger=0)
        self.db.close()


NOOP = normalize_spec({"kind": "noop"})


def run_batch(client, worker, first):
    """Submit one job to each of BATCH new queues, run them all to done; returns the last id."""
    ids = client.submit([dict(NOOP, queue=f"q{n}") for n in range(first, first + BATCH)])["ids"]
    results = [{"id": job["id"], "attempt": job["attempts"], "state": "done", "result": None, "error": None,
                "retry": None} for job in worker.jobs(BATCH, timeout=30)]
    worker.send(p.RESULTS, {"results": results})
    return ids[-1]


def test_a_hundred_thousand_queues_leave_memory_bounded(tmp_path):
    broker = SmallCacheBroker(tmp_path / "tubeway.db")
    worker = ScriptedWorker(broker.settings.broker, kinds=("noop",), credit=BATCH)
    try:
        with BrokerClient(broker.settings.broker, timeout=30) as client:
            client.wait(run_batch(client, worker, 0), timeout=30)  # warm every path and cache first
            gc.collect()
            before = rss()
            for first in range(BATCH, QUEUES, BATCH):
                last = run_batch(client, worker, first)
            assert client.wait(last, timeout=30)["state"] == "done"
            gc.collect()
            grown = rss() - before
    finally:
        worker.close()
        broker.stop()
    dispatcher, metrics = broker.broker.dispatcher, broker.broker.metrics
    print(f"RSS grew {grown / 2**20:.1f} MiB; windows {len(dispatcher.windows)}; series "
          f"{len(metrics.enqueued_by_queue)}/{len(metrics.dispatched_by_queue)}/{len(metrics.finished_by_queue)}")
    assert not dispatcher.windows and not dispatcher.by_kind and not dispatcher.members
    assert not broker.broker.jobs.leases and not broker.broker.store._recent
    for series in (metrics.enqueued_by_queue, metrics.dispatched_by_queue, metrics.finished_by_queue):
        assert len(series) <= QUEUE_SERIES_LIMIT + 1
    assert sum(metrics.finished_by_queue.values()) == QUEUES
    assert grown < RSS_GROWTH_LIMIT
