"""Running one job: results, errors, timeouts, serializability; the job threads of a worker."""
import threading
import time
from types import SimpleNamespace

import pytest

from tubeway import hookimpl
from tubeway.core.errors import JobTimeout
from tubeway.plugins.hookspecs import JobKind
from tubeway.plugins.manager import PluginManager
from tubeway.workers.executor import JobCancelled, JobContext, execute_job
from tubeway.workers.runner import JobRunner

SETTINGS = SimpleNamespace(plugins=["testing"], queue_default_timeout=30.0)


class Probe:
    """Kinds for the tests: ``probe.set`` (a non-serializable result), ``probe.report``
    (logs and progress), ``probe.block`` (ignores cancellation until released)."""

    def __init__(self):
        self.release = threading.Event()

    @hookimpl
    def tubeway_job_kinds(self):
        return [JobKind("probe.set"), JobKind("probe.report"), JobKind("probe.block")]

    @hookimpl
    def tubeway_run_job(self, job, context):
        if job["kind"] == "probe.set":
            return {1, 2}
        if job["kind"] == "probe.report":
            context.log("step one")
            context.progress({"done": 1, "total": 2})
            return "reported"
        self.release.wait(10)
        return "released"


class RetryPolicy:
    """A plugin declaring no kinds: it decides retries for every job."""

    decision = None

    @hookimpl
    def tubeway_retry_decision(self, job, error):
        return self.decision


@pytest.fixture
def probe():
    probe = Probe()
    yield probe
    probe.release.set()


@pytest.fixture
def policy():
    return RetryPolicy()


@pytest.fixture
def pm(probe, policy):
    return PluginManager.load(SETTINGS, extra=[("probe", probe), ("policy", policy)])


def job(kind, payload=None, timeout=None, attempts=2):
    return {"id": f"{kind}-1", "kind": kind, "payload": payload, "attempts": attempts, "timeout": timeout}


def run(pm, record):
    return execute_job(pm, record, JobContext(record, SETTINGS))


def test_a_returned_value_is_a_done_result(pm):
    result = run(pm, job("echo", {"a": [1, 2]}))
    assert result == {"id": "echo-1", "attempt": 2, "state": "done", "result": {"a": [1, 2]}, "error": None,
                      "retry": None, "logs": [], "progress": None}


def test_none_is_a_result(pm):
    result = run(pm, job("noop"))
    assert result["state"] == "done" and result["result"] is None


def test_an_exception_is_a_failed_result_naming_its_type(pm):
    result = run(pm, job("fail", "boom"))
    assert result["state"] == "failed" and result["error"] == "FailedOnPurpose: boom"
    assert run(pm, job("fail"))["error"] == "FailedOnPurpose: failed on purpose"


def test_the_retry_decision_comes_with_a_failure(pm, policy):
    assert run(pm, job("fail"))["retry"] is None
    policy.decision = False
    assert run(pm, job("fail"))["retry"] is False
    assert run(pm, job("echo"))["retry"] is None


def test_a_non_serializable_result_fails_clearly(pm):
    result = run(pm, job("probe.set"))
    assert result["state"] == "failed"
    assert "not JSON-serializable" in result["error"] and "set" in result["error"]


def test_logs_and_progress_travel_with_the_result(pm):
    result = run(pm, job("probe.report"))
    assert result["logs"] == ["step one"] and result["progress"] == {"done": 1, "total": 2}


def test_progress_must_be_serializable():
    context = JobContext(job("echo"), SETTINGS)
    with pytest.raises(TypeError, match="progress"):
        context.progress(object())


def test_logs_are_bounded():
    context = JobContext(job("echo"), SETTINGS)
    for n in range(1005):
        context.log(n)
    assert len(context.all_logs()) == 1001 and context.all_logs()[-1] == "... 5 more lines dropped"


def test_a_job_finishing_past_its_timeout_is_timed_out(pm):
    record = job("echo", "late", timeout=0.5)
    context = JobContext(record, SETTINGS, started=time.monotonic() - 1)
    result = execute_job(pm, record, context)
    assert result["state"] == "failed" and result["error"] == "timed out after 0.5 s"


def test_sleep_stops_at_the_deadline(pm):
    started = time.monotonic()
    result = run(pm, job("sleep", 30, timeout=0.2))
    assert result["error"] == "timed out after 0.2 s"
    assert time.monotonic() - started < 5


def test_context_sleep_raises_when_cancelled():
    context = JobContext(job("sleep"), SETTINGS)
    context.cancelled.set()
    with pytest.raises(JobCancelled):
        context.sleep(10)
    timed = JobContext(job("sleep", timeout=0), SETTINGS)
    with pytest.raises(JobTimeout):
        timed.check()


class Collector:
    """Results and stuck reports from a JobRunner, with a polling wait."""

    def __init__(self):
        self.results, self.stuck = [], []
        self.lock = threading.Lock()

    def result(self, result):
        with self.lock:
            self.results.append(result)

    def on_stuck(self, record, seconds):
        self.stuck.append(record["id"])

    def wait_for(self, predicate, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate(self):
                    return True
            time.sleep(0.01)
        return False


@pytest.fixture
def runner_for(pm):
    runners = []

    def make(threads=2, grace=5.0):
        collector = Collector()
        runner = JobRunner(pm, SETTINGS, threads, collector.result, collector.on_stuck, grace=grace)
        runner.start()
        runners.append(runner)
        return runner, collector
    yield make
    for runner in runners:
        runner.stop()


def test_the_runner_reports_each_job_once(runner_for):
    runner, collector = runner_for(threads=3)
    for n in range(50):
        runner.submit({**job("echo", n), "id": str(n)})
    assert collector.wait_for(lambda c: len(c.results) == 50)
    assert sorted(r["result"] for r in collector.results) == list(range(50))
    assert collector.wait_for(lambda c: runner.busy == 0)


def test_the_runner_reports_a_timeout_at_the_deadline_while_the_job_still_runs(runner_for, probe):
    runner, collector = runner_for(threads=1)
    started = time.monotonic()
    runner.submit(job("probe.block", timeout=0.2))
    assert collector.wait_for(lambda c: c.results)
    assert time.monotonic() - started < 3
    assert collector.results[0]["error"] == "timed out after 0.2 s"
    assert runner.busy == 0 and runner.alive_threads() == 1
    probe.release.set()
    assert collector.wait_for(lambda c: runner.alive_threads() == 0)
    assert len(collector.results) == 1


def test_a_job_ignoring_its_timeout_is_reported_stuck(runner_for):
    runner, collector = runner_for(threads=1, grace=0.2)
    runner.submit(job("probe.block", timeout=0.1))
    assert collector.wait_for(lambda c: c.stuck == ["probe.block-1"])
    assert collector.results[0]["state"] == "failed"


def test_sleep_jobs_end_early_on_timeout_freeing_their_thread(runner_for):
    runner, collector = runner_for(threads=1)
    runner.submit(job("sleep", 60, timeout=0.1))
    runner.submit(job("echo", "next"))
    assert collector.wait_for(lambda c: len(c.results) == 2, timeout=5)
    assert [r["state"] for r in collector.results] == ["failed", "done"]


def test_stopping_drops_waiting_jobs_and_abandons_running_ones(runner_for, probe):
    runner, collector = runner_for(threads=1)
    runner.submit(job("probe.block"))
    runner.submit(job("echo", "never"))
    assert collector.wait_for(lambda c: runner.alive_threads() == 1)
    assert [j["kind"] for j in runner.drop_pending()] == ["echo"]
    assert [j["kind"] for j in runner.stop()] == ["probe.block"]
    assert runner.busy == 0
    probe.release.set()
    assert collector.wait_for(lambda c: runner.alive_threads() == 0)
    assert collector.results == []
