"""Huey on SQLite for the peer benchmarks: the tasks and the client adapter (see workloads_client.py).

Storage: ``SqliteHuey`` with its defaults (WAL journal, SQLite's default ``synchronous``, results
stored), file named by ``PEER_HUEY_DB``. Huey has no bulk enqueue: one call per job.
"""
import os
import time

from huey import SqliteHuey

huey = SqliteHuey("bench", filename=os.environ["PEER_HUEY_DB"])
TASK_POLL = 0.0005


@huey.task()
def stamp():
    return time.monotonic()


@huey.task()
def noop():
    return 1  # Huey stores no result for None: return something, so every job leaves one


@huey.task()
def sleep():
    time.sleep(0.01)
    return 1


class Client:
    """The workloads' adapter for Huey."""

    tasks = {"noop": noop, "sleep": sleep, "stamp": stamp}

    def enqueue(self, task, count):
        call = self.tasks[task]
        for _ in range(count):
            call()

    def enqueue_delayed(self, delays):
        out = []
        for delay in delays:
            due = time.monotonic() + delay
            out.append((stamp.schedule(delay=delay), due))
        return out

    def enqueue_one(self, task):
        return self.tasks[task]()

    def done_count(self):
        return huey.storage.result_store_size()

    def wait(self, handle, timeout):
        deadline = time.monotonic() + timeout
        while True:
            value = handle.get()
            if value is not None:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError("no result")
            time.sleep(TASK_POLL)

    def value(self, handle):
        return handle.get()

    def durability(self):
        conn = huey.storage.conn
        journal = conn.execute("pragma journal_mode").fetchone()[0]
        synchronous = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[conn.execute("pragma synchronous").fetchone()[0]]
        return f"SQLite journal_mode={journal}, synchronous={synchronous}"
