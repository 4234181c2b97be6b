"""Celery on Redis for the peer benchmarks: the app, its tasks and the client adapter.

Broker ``PEER_REDIS_URL``, result backend ``PEER_RESULT_URL`` (a database of its own, so the
results recorded are counted with ``DBSIZE``). Celery's defaults otherwise (prefetch
multiplier 4, early acknowledgement, JSON).
"""
import os
import time

from celery import Celery

app = Celery("bench", broker=os.environ["PEER_REDIS_URL"], backend=os.environ["PEER_RESULT_URL"])
app.conf.broker_connection_retry_on_startup = True
TASK_POLL = 0.0005


@app.task(name="stamp")
def stamp():
    return time.monotonic()


@app.task(name="noop")
def noop():
    return 1


@app.task(name="sleep")
def sleep():
    time.sleep(0.01)
    return 1


class Client:
    """The workloads' adapter for Celery."""

    tasks = {"noop": noop, "sleep": sleep, "stamp": stamp}

    def enqueue(self, task, count):
        call = self.tasks[task].delay
        for _ in range(count):
            call()

    def enqueue_delayed(self, delays):
        out = []
        for delay in delays:
            due = time.monotonic() + delay
            out.append((stamp.apply_async(countdown=delay), due))
        return out

    def enqueue_one(self, task):
        return self.tasks[task].delay()

    def done_count(self):
        return app.backend.client.dbsize()

    def wait(self, handle, timeout):
        deadline = time.monotonic() + timeout
        while True:  # polling the backend, as the other adapters do (get() would add a pub/sub round)
            if handle.ready():
                return handle.result
            if time.monotonic() > deadline:
                raise TimeoutError("no result")
            time.sleep(TASK_POLL)

    def value(self, handle):
        return handle.result if handle.ready() else None

    def durability(self):
        return "Redis (see the server's persistence)"
