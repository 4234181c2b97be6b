"""A worker's job threads: kinds with a concurrency run on pools of their own; credit counts every thread."""
import threading
import time
from types import SimpleNamespace

import pytest

from tubeway import hookimpl
from tubeway.plugins.hookspecs import JobKind
from tubeway.plugins.manager import PluginManager
from tubeway.workers.runner import JobRunner

SETTINGS = SimpleNamespace(plugins=["testing"], queue_default_timeout=30.0)


class Gate:
    """``gate.slow`` (concurrency 3) and ``gate.shared`` (shared pool): both block until released.

    Counts how many of each run at once, and the most that ever did.
    """

    def __init__(self):
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.running = {"gate.slow": 0, "gate.shared": 0}
        self.most = {"gate.slow": 0, "gate.shared": 0}

    @hookimpl
    def tubeway_job_kinds(self):
        return [JobKind("gate.slow", concurrency=3), JobKind("gate.shared")]

    @hookimpl
    def tubeway_run_job(self, job, context):
        kind = job["kind"]
        with self.lock:
            self.running[kind] += 1
            self.most[kind] = max(self.most[kind], self.running[kind])
        try:
            self.release.wait(10)
        finally:
            with self.lock:
                self.running[kind] -= 1
        return job["id"]


@pytest.fixture
def gate():
    gate = Gate()
    yield gate
    gate.release.set()


@pytest.fixture
def pm(gate):
    return PluginManager.load(SETTINGS, extra=[("gate", gate)])


class Results:
    """Results a runner reports, with a polling wait."""

    def __init__(self):
        self.items = []
        self.lock = threading.Lock()

    def add(self, result):
        with self.lock:
            self.items.append(result)

    def ids(self):
        with self.lock:
            return sorted(r["id"] for r in self.items)


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def runner_for(pm):
    runners = []

    def make(threads=1, kind_threads=None):
        results = Results()
        runner = JobRunner(pm, SETTINGS, threads, results.add, kind_threads=kind_threads)
        runner.start()
        runners.append(runner)
        return runner, results
    yield make
    for runner in runners:
        runner.stop()


def job(job_id, kind, payload=None):
    return {"id": job_id, "kind": kind, "payload": payload, "attempts": 1, "timeout": None}


def test_the_manager_lists_kinds_with_their_own_threads(pm):
    assert pm.kind_concurrency() == {"gate.slow": 3}


def test_the_runner_takes_its_pools_from_the_manager(runner_for):
    runner, _ = runner_for(threads=2)
    assert runner.kind_threads() == {"gate.slow": 3}
    assert runner.threads == 5


def test_a_kind_with_a_concurrency_runs_that_many_at_once_beside_the_shared_pool(runner_for, gate):
    runner, results = runner_for(threads=1)
    for n in range(5):
        runner.submit(job(f"slow{n}", "gate.slow"))
    runner.submit(job("shared0", "gate.shared"))
    assert wait_for(lambda: gate.running == {"gate.slow": 3, "gate.shared": 1})
    # Three slow jobs and a shared one run at once; the two other slow jobs and an echo wait their turn.
    runner.submit(job("echo", "echo", "through"))
    assert runner.busy == 7
    gate.release.set()
    assert wait_for(lambda: len(results.ids()) == 7)
    assert gate.most == {"gate.slow": 3, "gate.shared": 1}
    assert wait_for(lambda: runner.busy == 0)


def test_slow_jobs_filling_their_pool_never_hold_up_shared_kinds(runner_for, gate):
    runner, results = runner_for(threads=2)
    for n in range(10):
        runner.submit(job(f"slow{n}", "gate.slow"))
    assert wait_for(lambda: gate.running["gate.slow"] == 3)
    for n in range(20):
        runner.submit(job(f"echo{n}", "echo", n))
    assert wait_for(lambda: len(results.ids()) == 20)
    assert all(r["state"] == "done" and r["id"].startswith("echo") for r in results.items)
    assert gate.running["gate.slow"] == 3 and gate.most["gate.slow"] == 3
    gate.release.set()
    assert wait_for(lambda: len(results.ids()) == 30)


def test_shared_jobs_filling_the_shared_pool_never_hold_up_a_kind_of_its_own(runner_for, gate):
    runner, results = runner_for(threads=1, kind_threads={"echo": 2})
    runner.submit(job("shared0", "gate.shared"))
    assert wait_for(lambda: gate.running["gate.shared"] == 1)
    for n in range(10):
        runner.submit(job(f"echo{n}", "echo", n))
    assert wait_for(lambda: len(results.ids()) == 10)
    gate.release.set()
    assert wait_for(lambda: len(results.ids()) == 11)


def test_credit_counts_the_threads_of_every_pool(runner_for):
    runner, results = runner_for(threads=2, kind_threads={"sleep": 3})
    assert runner.threads == 5
    assert runner.credit(1000) == 10  # untimed: two jobs per thread of every pool
    assert runner.credit(7) == 7
    for n in range(3):
        runner.submit(job(f"sleep{n}", "sleep", 0.1))
    assert wait_for(lambda: len(results.ids()) == 3)
    # Sleep jobs take twice the buffer: one per thread of their pool; the shared pool is still untimed.
    assert runner.credit(1000) == 3 + 2 * 2


def test_fast_jobs_earn_a_deep_prefetch_within_the_bound(runner_for):
    runner, results = runner_for(threads=2, kind_threads={"sleep": 3})
    for n in range(3):
        runner.submit(job(f"sleep{n}", "sleep", 0.1))
    for n in range(2):
        runner.submit(job(f"noop{n}", "noop"))
    assert wait_for(lambda: len(results.ids()) == 5)
    assert runner.credit(1000) > runner.threads  # noop jobs take microseconds: a deep prefetch pays
    assert runner.credit(4) == 4


def test_stopping_clears_every_pool(runner_for, gate):
    runner, results = runner_for(threads=1)
    for n in range(5):
        runner.submit(job(f"slow{n}", "gate.slow"))
    runner.submit(job("shared0", "gate.shared"))
    runner.submit(job("shared1", "gate.shared"))
    assert wait_for(lambda: gate.running == {"gate.slow": 3, "gate.shared": 1})
    assert sorted(j["id"] for j in runner.drop_pending()) == ["shared1", "slow3", "slow4"]
    assert sorted(j["id"] for j in runner.stop()) == ["shared0", "slow0", "slow1", "slow2"]
    assert runner.busy == 0
    gate.release.set()
    assert wait_for(lambda: runner.alive_threads() == 0)
    assert results.items == []


def test_aborted_jobs_are_dropped_or_stopped_and_then_reported(runner_for):
    runner, results = runner_for(threads=1, kind_threads={"sleep": 1})
    runner.submit(job("long", "sleep", 30))
    runner.submit(job("waiting", "sleep", 30))
    assert wait_for(lambda: runner.alive_threads() == 1)
    assert [dropped["id"] for dropped in runner.abort(["long", "waiting", "unknown"])] == ["waiting"]
    assert wait_for(lambda: runner.alive_threads() == 0, timeout=5)  # the sleep woke up on cancellation
    assert wait_for(lambda: results.ids() == ["long"])  # the stopped run is answered: the broker awaits it
    assert runner.busy == 0
    runner.submit(job("next", "sleep", 0))
    assert wait_for(lambda: results.ids() == ["long", "next"])
