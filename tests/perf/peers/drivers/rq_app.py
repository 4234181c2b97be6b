"""RQ for the peer benchmarks: the job functions and the client adapter (see workloads_client.py).

Queue ``bench`` on ``PEER_REDIS_URL``; plain jobs go in through ``enqueue_many`` (one Redis
pipeline per batch), delayed ones through ``enqueue_at`` (the workers run ``--with-scheduler``).
Results are RQ's default: kept ``result_ttl`` (500 s) in Redis.
"""
import os
import time
from datetime import datetime, timezone

from redis import Redis
from rq import Queue

BATCH = 1000
TASK_POLL = 0.0005


def stamp():
    return time.monotonic()


def noop():
    return 1


def sleep():
    time.sleep(0.01)
    return 1


class Client:
    """The workloads' adapter for RQ."""

    tasks = {"noop": noop, "sleep": sleep, "stamp": stamp}

    def __init__(self):
        self.redis = Redis.from_url(os.environ["PEER_REDIS_URL"])
        self.queue = Queue("bench", connection=self.redis)

    def enqueue(self, task, count):
        func = self.tasks[task]
        for start in range(0, count, BATCH):
            batch = [Queue.prepare_data(func) for _ in range(min(BATCH, count - start))]
            self.queue.enqueue_many(batch)

    def enqueue_delayed(self, delays):
        out = []
        for delay in delays:
            due, wall = time.monotonic() + delay, time.time() + delay
            out.append((self.queue.enqueue_at(datetime.fromtimestamp(wall, tz=timezone.utc), stamp), due))
        return out

    def enqueue_one(self, task):
        return self.queue.enqueue(self.tasks[task])

    def done_count(self):
        return self.queue.finished_job_registry.count

    def wait(self, handle, timeout):
        deadline = time.monotonic() + timeout
        while True:
            value = handle.return_value(refresh=True)
            if value is not None:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError("no result")
            time.sleep(TASK_POLL)

    def value(self, handle):
        return handle.return_value(refresh=True)

    def durability(self):
        return "Redis (see the server's persistence)"
