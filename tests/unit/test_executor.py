"""Running one job: results, errors, timeouts, serializability; the job threads of a worker."""
import threading
import time
from types import SimpleNamespace

import pytest

from tubeway import hookimpl
from tubeway.core.errors import JobTimeout
from tubeway.plugins.hookspecs import JobKind
from tubeway.plugins.manager import PluginManager
from tubeway.workers.executor import MAX_SPAWN, JobCancelled, JobContext, SpawnError, execute_job
from tubeway.workers.runner import JobRunner

SETTINGS = SimpleNamespace(plugins=["testing"], queue_default_timeout=30.0)


class Probe:
    """Kinds for the tests: ``probe.set`` (a non-serializable result), ``probe.report``
    (logs and progress), ``probe.block`` (ignores cancellation until released),
    ``probe.spawn`` (spawns ``payload["specs"]``, then awaits, catches or raises as told)."""

    def __init__(self):
        self.release = threading.Event()

    @hookimpl
    def tubeway_job_kinds(self):
        return [JobKind("probe.set"), JobKind("probe.report"), JobKind("probe.block"), JobKind("probe.spawn")]

    @hookimpl
    def tubeway_run_job(self, job, context):
        if job["kind"] == "probe.set":
            return {1, 2}
        if job["kind"] == "probe.report":
            context.log("step one")
            context.progress({"done": 1, "total": 2})
            return "reported"
        if job["kind"] == "probe.spawn":
            return self.spawn(job["payload"], context)
        self.release.wait(10)
        return "released"

    @staticmethod
    def spawn(payload, context):
        try:
            context.spawn(payload.get("specs", []))
        except SpawnError:
            if not payload.get("catch"):
                raise
        if "await" in payload:
            context.await_children(payload["await"])
        if payload.get("raise"):
            raise RuntimeError("broke after spawning")
        return "spawned"


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
    duration = result.pop("duration")
    assert result == {"id": "echo-1", "attempt": 2, "lease": None, "state": "done", "result": {"a": [1, 2]}, "error": None,
                      "retry": None, "logs": [], "progress": None}
    assert isinstance(duration, float) and 0 <= duration < 5


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


def test_results_carry_how_long_the_run_took(pm):
    result = run(pm, job("sleep", 0.2))
    assert result["state"] == "done" and 0.2 <= result["duration"] < 5
    assert 0.2 <= run(pm, job("sleep", 30, timeout=0.2))["duration"] < 5
    assert run(pm, job("fail"))["duration"] >= 0


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


# Jobs that make jobs.

def spawner(specs, **payload):
    return {**job("probe.spawn", {"specs": specs, **payload}), "namespace": "ns", "queue": "q"}


def test_spawned_specs_travel_normalized_with_a_done_result(pm):
    result = run(pm, spawner([{"kind": "echo", "payload": 1, "parent": "probe.spawn-1", "attempts": 3},
                              {"kind": "noop", "queue": "other", "priority": -5}]))
    assert result["state"] == "done" and result["result"] == "spawned"
    first, second = result["spawn"]
    assert first["kind"] == "echo" and first["payload"] == 1 and first["parent"] == "probe.spawn-1"
    assert first["max_attempts"] == 3 and first["backoff"]["type"] == "exponential"
    # The native API's defaults, not the spawning job's: a child names its namespace and parent itself.
    assert first["namespace"] == "default" and first["queue"] == "default"
    assert second["queue"] == "other" and second["priority"] == -5 and second["parent"] is None
    assert "await" not in result


def test_await_travels_as_an_int_with_or_without_spawned_jobs(pm):
    result = run(pm, spawner([{"kind": "noop", "parent": "probe.spawn-1"}], **{"await": 1}))
    assert result["await"] == 1 and len(result["spawn"]) == 1
    result = run(pm, spawner([], **{"await": 0}))
    assert result["state"] == "done" and result["await"] == 0 and "spawn" not in result


def test_a_job_spawning_nothing_sends_neither_field(pm):
    result = run(pm, job("echo", "x"))
    assert "spawn" not in result and "await" not in result


@pytest.mark.parametrize("spec, message", [
    ({"payload": 1}, "spawned job 1 is invalid: 'kind' must be a non-empty string"),
    ({"kind": "nosuch"}, "spawned job 1 is invalid: no installed plugin runs jobs of kind 'nosuch'"),
    ({"kind": "echo", "colour": "red"}, "spawned job 1 is invalid: unknown field 'colour'"),
    ({"kind": "echo", "attempts": 0}, "spawned job 1 is invalid: 'attempts' must be between 1 and 10000"),
    ({"kind": "sleep", "payload": "long"}, "spawned job 1 is invalid: a sleep job's payload must be a number"),
    ({"kind": "echo", "payload": {1, 2}}, "spawned job 1 is invalid: TypeError: the job's payload is not JSON"),
    ("echo", "spawned job 1 is invalid: a job must be a JSON object"),
])
def test_a_bad_spawned_spec_fails_the_job_naming_it(pm, spec, message):
    result = run(pm, spawner([{"kind": "noop"}, spec], **{"await": 2}))
    assert result["state"] == "failed" and result["error"].startswith("SpawnError: " + message)
    assert "spawn" not in result and "await" not in result


def test_spawned_jobs_are_dropped_when_the_job_fails(pm):
    result = run(pm, spawner([{"kind": "noop"}], **{"await": 1, "raise": True}))
    assert result["state"] == "failed" and result["error"] == "RuntimeError: broke after spawning"
    assert "spawn" not in result and "await" not in result


def test_spawned_jobs_are_dropped_when_the_job_times_out(pm):
    record = {**spawner([{"kind": "noop"}]), "timeout": 0.5}
    result = execute_job(pm, record, JobContext(record, SETTINGS, started=time.monotonic() - 1))
    assert result["error"] == "timed out after 0.5 s" and "spawn" not in result


def test_a_job_may_spawn_up_to_the_limit(pm):
    result = run(pm, spawner([{"kind": "noop"}] * MAX_SPAWN))
    assert result["state"] == "done" and len(result["spawn"]) == MAX_SPAWN == 10_000


def test_spawning_past_the_limit_fails_the_job_even_when_caught(pm):
    expected = f"SpawnError: a job may spawn at most {MAX_SPAWN} jobs; this one spawned {MAX_SPAWN + 1}"
    result = run(pm, spawner([{"kind": "noop"}] * (MAX_SPAWN + 1)))
    assert result["state"] == "failed" and result["error"] == expected and "spawn" not in result
    result = run(pm, spawner([{"kind": "noop"}] * (MAX_SPAWN + 1), catch=True))
    assert result["state"] == "failed" and result["error"] == expected


def test_the_limit_counts_every_call():
    context = JobContext(job("echo"), SETTINGS)
    context.spawn([{"kind": "noop"}] * (MAX_SPAWN - 1))
    context.spawn({"kind": "noop"})
    with pytest.raises(SpawnError, match="at most 10000"):
        context.spawn([{"kind": "noop"}])
    assert len(context.spawned) == MAX_SPAWN


def test_spawn_copies_the_specs_it_is_given():
    context = JobContext(job("echo"), SETTINGS)
    spec = {"kind": "echo", "payload": 1}
    context.spawn([spec])
    spec["payload"] = 2
    assert context.spawned == [{"kind": "echo", "payload": 1}]


@pytest.mark.parametrize("total", [-1, 1.5, True, "3", None])
def test_await_children_takes_a_count(total):
    with pytest.raises(ValueError, match="await_children"):
        JobContext(job("echo"), SETTINGS).await_children(total)


def test_the_testing_spawn_kind_makes_its_children_its_own(pm):
    record = {**job("spawn", {"children": [{"kind": "echo", "payload": 7}, {"kind": "noop", "parent": "x"}],
                              "await": True}), "namespace": "ns"}
    result = run(pm, record)
    assert result["result"] == {"spawned": 2} and result["await"] == 2
    assert [(c["parent"], c["namespace"]) for c in result["spawn"]] == [("spawn-1", "ns"), ("x", "ns")]
    result = run(pm, job("spawn", {"children": [{"kind": "noop"}]}))
    assert "await" not in result and result["spawn"][0]["namespace"] == "default"
