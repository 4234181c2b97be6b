"""External workers of the Accepted jobs API: take jobs with ``POST /want_job``, report them with ``PUT``.

Each :class:`Consumer` thread takes jobs under a lease of :data:`LEASE` seconds and reports
them done with :func:`accepted_result` of their params. While ``reckless`` is set it
sometimes "dies" holding a job: it never reports it, so only the lease running out
brings the job back. Every hand-out, abandonment and accepted report goes into the
ledger, so redeliveries can be counted and attributed.
"""
import random
import threading

import requests

LEASE = 2  # seconds: X-Accepted-Timeout
BLOCK = 1  # seconds: X-Accepted-Block-For (within the front end's request timeout)
DIE_RATE = 0.1
TIMEOUT = (2, 5)
RETRY_PAUSE = 0.1


def accepted_result(params):
    """What a consumer reports for a job: a function of its params, so any holder reports the same."""
    return {"handled": params}


class Consumers:
    """``count`` consumer threads sharing one ledger, stopped together."""

    def __init__(self, url, ledger, seed, count=2):
        self.url = url
        self.ledger = ledger
        self.reckless = threading.Event()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(random.Random(seed + 100 + i),),
                                         name=f"consumer-{i}", daemon=True) for i in range(count)]

    def start(self, reckless=True):
        """Start taking jobs (dying now and then while ``reckless``)."""
        if reckless:
            self.reckless.set()
        for thread in self.threads:
            thread.start()

    def calm(self):
        """From now on report every job taken."""
        self.reckless.clear()

    def stop(self):
        """Stop taking jobs and wait for the threads."""
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _run(self, rng):
        session = requests.Session()
        headers = {"X-Accepted-Timeout": str(LEASE), "X-Accepted-Block-For": str(BLOCK)}
        while not self.stopping.is_set():
            try:
                response = session.post(f"{self.url}/want_job", headers=headers, timeout=TIMEOUT)
                if response.status_code == 200:
                    self._handle(session, rng, response.json())
                elif response.status_code != 204:
                    self.stopping.wait(RETRY_PAUSE)  # the broker is away: ask again shortly
            except (requests.RequestException, ValueError):
                self.stopping.wait(RETRY_PAUSE)
        session.close()

    def _handle(self, session, rng, job):
        self.ledger.note(self.ledger.deliveries, job["id"])
        if self.reckless.is_set() and rng.random() < DIE_RATE:
            self.ledger.note(self.ledger.abandoned, job["id"])
            return
        body = {"status": "done", "result": accepted_result(job["params"])}
        response = session.put(f"{self.url}/jobs/{job['id']}", json=body, timeout=TIMEOUT)
        if response.status_code == 200:
            self.ledger.note(self.ledger.reported, job["id"])
