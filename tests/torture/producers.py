"""Producer threads posting work over HTTP in every dialect Tubeway serves, recording what was acknowledged.

* native (``POST /api/v1/jobs``): ``echo`` and ``sleep`` jobs, single or in arrays, some
  with attempts and a backoff, some delayed a second or two; and every two seconds a burst
  of :data:`BURST` short ``sleep`` jobs, more than the workers hold at once, so that a
  queue often has jobs both running and waiting when something is killed;
* Accepted (``POST /jobs``): jobs for the external :class:`consumer.Consumer`, at random
  priorities, some delayed;
* Queue task API: ``POST /task`` calls to the sink carrying a unique token, and
  ``POST /fraction`` over a small range (10 to 120 ids, gap 10).

Each thread has its own seeded RNG and paces itself; a 2xx answer goes into the
:class:`ledger.Ledger`, anything else (error status, reset, timeout) is only counted.
"""
import itertools
import random
import threading
import uuid

import requests

TIMEOUT = (2, 5)  # connect, read: a front end or broker being killed must not stall a producer
NATIVE_QUEUES = {"echo": "t-echo", "sleep": "t-sleep"}
ACCEPTED_QUEUES = ("t-acc-a", "t-acc-b")
TASK_QUEUE = "t-task"
FRACTION_QUEUE = "t-frac"
FRACTION_GAP = 10
BURST = 40


def native_spec(rng, number):
    """One native job: ``echo`` (result = payload) or ``sleep`` (result None), maybe retried or delayed."""
    if rng.random() < 0.45:
        payload = {"n": number, "pad": "x" * rng.randint(0, 40)}
        spec = {"kind": "echo", "queue": NATIVE_QUEUES["echo"], "payload": payload}
    else:
        spec = {"kind": "sleep", "queue": NATIVE_QUEUES["sleep"], "payload": round(rng.uniform(0.02, 0.3), 3)}
    if rng.random() < 0.3:
        spec.update(attempts=3, backoff={"type": "fixed", "delay": 0.2})
    if rng.random() < 0.15:
        spec["delay"] = rng.choice((1, 2))
    return spec


class Producers:
    """One thread per dialect (see the module docstring), started together, stopped together."""

    def __init__(self, url, sink_url, ledger, seed):
        self.url = url
        self.sink_url = sink_url
        self.ledger = ledger
        self.stopping = threading.Event()
        self.numbers = itertools.count(1)
        plan = [("native", self._native, 0.03), ("native", self._native, 0.03), ("native", self._burst, 2.0),
                ("accepted", self._accepted, 0.06), ("task", self._task, 0.06), ("fraction", self._fraction, 0.7)]
        self.threads = [threading.Thread(target=self._loop, args=(dialect, submit, pace, random.Random(seed + i)),
                                         name=f"producer-{dialect}-{i}", daemon=True)
                        for i, (dialect, submit, pace) in enumerate(plan)]

    def start(self):
        """Start posting."""
        for thread in self.threads:
            thread.start()

    def stop(self):
        """Stop posting and wait for every thread (each ends within one request timeout)."""
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _loop(self, dialect, submit, pace, rng):
        session = requests.Session()
        while not self.stopping.is_set():
            try:
                if not submit(session, rng):
                    self.ledger.refused(dialect)
            except (requests.RequestException, ValueError):
                self.ledger.refused(dialect)
            self.stopping.wait(pace)  # pacing, not waiting for anything
        session.close()

    def _post(self, session, path, **kwargs):
        return session.post(self.url + path, timeout=TIMEOUT, **kwargs)

    def _native(self, session, rng):
        count = rng.randint(2, 6) if rng.random() < 0.2 else 1
        return self._submit(session, [native_spec(rng, next(self.numbers)) for _ in range(count)])

    def _burst(self, session, rng):
        specs = [{"kind": "sleep", "queue": NATIVE_QUEUES["sleep"], "payload": round(rng.uniform(0.05, 0.2), 3)}
                 for _ in range(BURST)]
        return self._submit(session, specs)

    def _submit(self, session, specs):
        """POST native specs (an array when more than one); ack each id the answer names."""
        response = self._post(session, "/api/v1/jobs", json=specs if len(specs) > 1 else specs[0])
        if response.status_code != 201:
            return False
        ids = response.json()["ids"] if len(specs) > 1 else [response.json()["id"]]
        for job_id, spec in zip(ids, specs):
            self.ledger.ack("native", job_id, spec)
        return True

    def _accepted(self, session, rng):
        body = {"queue": rng.choice(ACCEPTED_QUEUES), "params": {"n": next(self.numbers)}}
        headers = {"X-Accepted-Priority": str(rng.randint(0, 3))}
        if rng.random() < 0.1:
            headers["X-Accepted-Delay"] = "1"
        response = self._post(session, "/jobs", json=body, headers=headers)
        if response.status_code != 202:
            return False
        self.ledger.ack("accepted", response.json()["id"], body)
        return True

    def _task(self, session, rng):
        token = uuid.uuid4().hex
        body = {"worker": TASK_QUEUE, "url": f"{self.sink_url}/task", "method": "post", "timeout": 5,
                "delay": 1 if rng.random() < 0.1 else 0, "json": {"token": token}}
        return self._queue_call(session, "/task", "task", token, body)

    def _fraction(self, session, rng):
        token = uuid.uuid4().hex
        body = {"worker": FRACTION_QUEUE, "url": f"{self.sink_url}/fraction", "method": "post", "timeout": 5,
                "delay": 0, "json": {"frac": token}, "min": 0, "max": rng.randint(10, 120), "gap": FRACTION_GAP}
        return self._queue_call(session, "/fraction", "fraction", token, body)

    def _queue_call(self, session, path, dialect, token, body):
        response = self._post(session, path, json=body)
        if response.status_code != 200 or response.json().get("status") is not True:
            return False
        self.ledger.ack(dialect, token, body)
        return True
