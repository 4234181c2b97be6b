"""The ``command`` kind with real ``/bin/sh`` commands (no fakes): exit status, env, dir, limits, process groups."""
import os
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from procs import gone
from tubeway.core.errors import JobTimeout, ValidationError
from tubeway.plugins.builtin import command, command_process
from tubeway.plugins.builtin.command import CommandFailed, CommandsDisabled
from tubeway.plugins.manager import PluginManager
from tubeway.workers.executor import JobCancelled, JobContext, execute_job

pytestmark = pytest.mark.timeout(60)


def settings(tmp_path, **values):
    base = dict(plugins=None, queue_default_timeout=30.0, enable_commands=True, data_dir=str(tmp_path / "data"),
                command_time_limit=30.0, command_kill_grace=2.0, command_log_max_bytes=1024 * 1024,
                command_concurrency=2)
    base.update(values)
    return SimpleNamespace(**base)


def job(payload, **fields):
    return {"id": "j1", "kind": "command", "payload": payload, "attempts": 1, "max_attempts": 3, "timeout": None,
            "queue": "q1", **fields}


def run(tmp_path, payload, timeout=None, **values):
    """Run ``payload`` through the plugin manager as a worker would: the result record."""
    s = settings(tmp_path, **values)
    pm = PluginManager.load(s)
    spec = job(payload, timeout=timeout)
    pm.validate_job(spec, s)
    return execute_job(pm, spec, JobContext(spec, s))


# Exit status, output, env, dir.

def test_exit_0_is_done_with_its_output_as_logs(tmp_path):
    record = run(tmp_path, {"command": "echo hello; echo oops >&2; printf 'no newline'"})
    assert record["state"] == "done" and record["result"] == {"exit_status": 0}
    assert record["logs"] == ["hello", "oops", "no newline"]


def test_exit_n_fails_with_exactly_that_error_and_is_not_retried(tmp_path):
    record = run(tmp_path, {"command": "echo before; exit 3"})
    assert record["state"] == "failed" and record["error"] == "Exited with status 3"
    assert record["retry"] is False and record["logs"] == ["before"]


def test_a_signal_is_named(tmp_path):
    record = run(tmp_path, {"command": "kill -KILL $$"})
    assert record["error"] == "Killed by signal SIGKILL"


def test_env_over_the_servers_path_and_nothing_else_leaks(tmp_path, monkeypatch):
    monkeypatch.setenv("TUBEWAY_SECRET_FOR_TEST", "s3cret")
    record = run(tmp_path, {"command": 'echo "$GREETING|$PATH|${TUBEWAY_SECRET_FOR_TEST:-unset}"; env | cut -d= -f1',
                            "env": {"GREETING": "hi there"}})
    assert record["state"] == "done", record["error"]
    assert record["logs"][0] == f"hi there|{os.environ['PATH']}|unset"
    names = set(record["logs"][1:]) - {"PWD", "OLDPWD", "SHLVL", "_"}  # what sh sets itself
    assert names <= {"GREETING", "PATH", "HOME", "LANG"}


def test_env_may_override_path(tmp_path):
    record = run(tmp_path, {"command": 'echo "$PATH"', "env": {"PATH": "/bin:/usr/bin"}})
    assert record["logs"] == ["/bin:/usr/bin"]


def test_the_default_dir_is_the_queues_under_data_dir_made_on_first_use(tmp_path):
    record = run(tmp_path, {"command": "pwd; touch made-here"})
    expected = tmp_path / "data" / "commands" / "q1"
    assert record["logs"] == [str(expected)] and (expected / "made-here").exists()


def test_dir_is_used_and_must_exist(tmp_path):
    (tmp_path / "work").mkdir()
    record = run(tmp_path, {"command": "pwd", "dir": str(tmp_path / "work")})
    assert record["logs"] == [str(tmp_path / "work")]
    record = run(tmp_path, {"command": "pwd", "dir": str(tmp_path / "missing")})
    assert record["state"] == "failed" and "does not exist" in record["error"]


def test_queue_names_cannot_escape_the_commands_dir(tmp_path):
    s = settings(tmp_path)
    assert command.queue_dir(s, "../x/y") == str(tmp_path / "data" / "commands" / ".._x_y")
    assert command.queue_dir(s, "..") == str(tmp_path / "data" / "commands" / "__")


# Limits.

def test_a_memory_limit_stops_an_allocation(tmp_path):
    allocate = f'{sys.executable} -c "bytearray(500*1024*1024); print(\'allocated\')"'
    limited = run(tmp_path, {"command": allocate, "memory_in_mb": 100})
    assert limited["state"] == "failed" and limited["error"] == "Exited with status 1"
    assert any("MemoryError" in line for line in limited["logs"])
    assert run(tmp_path, {"command": allocate, "memory_in_mb": 2000})["logs"] == ["allocated"]


def test_a_file_size_limit_stops_a_write(tmp_path):
    limited = run(tmp_path, {"command": "head -c 2000000 /dev/zero > f", "disk_in_mb": 1})
    assert limited["state"] == "failed"
    assert limited["error"] in ("Killed by signal SIGXFSZ", "Exited with status 153", "Exited with status 1")
    size = os.path.getsize(tmp_path / "data" / "commands" / "q1" / "f")
    assert size <= 1024 * 1024
    assert run(tmp_path, {"command": "head -c 500000 /dev/zero > g", "disk_in_mb": 1})["state"] == "done"


def test_a_log_rate_limit_drops_the_excess_with_a_line_saying_so(tmp_path):
    record = run(tmp_path, {"command": "for i in $(seq 1 200); do echo line-$i; done",
                            "log_rate_limit_in_bytes_per_second": 100})
    assert record["state"] == "done"
    kept = [line for line in record["logs"] if line.startswith("line-")]
    notes = [line for line in record["logs"] if "dropped" in line]
    assert 5 <= len(kept) <= 20
    assert notes and "log_rate_limit_in_bytes_per_second (100)" in notes[-1]
    total = sum(len(f"line-{i}\n") for i in range(1, 201))
    dropped = sum(int(note.split()[1]) for note in notes)
    assert dropped + sum(len(line) + 1 for line in kept) == total


def test_unlimited_rate_and_the_log_byte_bound(tmp_path):
    record = run(tmp_path, {"command": "seq 1 100", "log_rate_limit_in_bytes_per_second": -1})
    assert record["logs"] == [str(i) for i in range(1, 101)]
    record = run(tmp_path, {"command": "seq 1 100"}, command_log_max_bytes=20)
    assert record["logs"][:-1] == [str(i) for i in range(1, 10)]  # 18 bytes; "10\n" would pass 20
    assert record["logs"][-1].startswith("... ") and "command_log_max_bytes (20)" in record["logs"][-1]


def test_the_time_limit_kills_the_command(tmp_path):
    started = time.monotonic()
    record = run(tmp_path, {"command": "echo started; sleep 30"}, command_time_limit=0.5)
    assert time.monotonic() - started < 5
    assert record["state"] == "failed" and record["error"] == "Ran past command_time_limit (0.5 s) and was killed"
    assert record["logs"] == ["started"] and record["retry"] is False


def test_the_jobs_timeout_stops_it_sooner(tmp_path):
    record = run(tmp_path, {"command": "sleep 30"}, timeout=0.5)
    assert record["state"] == "failed" and record["error"] == "timed out after 0.5 s"


# Process groups.

def test_a_background_child_is_gone_when_the_task_ends(tmp_path):
    record = run(tmp_path, {"command": "sleep 300 & echo $!"})
    assert record["state"] == "done", record["error"]
    child = int(record["logs"][0])
    assert gone(child)


def test_a_child_ignoring_term_is_killed_after_the_grace(tmp_path):
    started = time.monotonic()
    record = run(tmp_path, {"command": "(trap '' TERM; sleep 300) & echo $!"}, command_kill_grace=0.5)
    child = int(record["logs"][0])
    assert gone(child) and time.monotonic() - started < 5


def test_cancelling_a_running_sleep_ends_within_the_grace_and_the_group_is_gone(tmp_path):
    s = settings(tmp_path, command_kill_grace=2.0)
    context = JobContext(job({"command": "echo $$; sleep 30"}), s)
    outcome = {}

    def target():
        try:
            command.run_command(context.job["payload"], context, "q1")
        except Exception as exc:  # noqa: BLE001 - recorded for the assertions
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    deadline = time.monotonic() + 5
    while not context.logs and time.monotonic() < deadline:
        time.sleep(0.02)
    shell = int(context.logs[0])
    started = time.monotonic()
    context.cancelled.set()
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - started < 2.0
    assert isinstance(outcome["error"], JobCancelled)
    assert gone(shell) and not command_process.group_alive(shell)


# Enabling, validation.

def test_while_disabled_every_command_job_is_refused_naming_the_setting(tmp_path):
    s = settings(tmp_path, enable_commands=False)
    pm = PluginManager.load(s)
    with pytest.raises(CommandsDisabled) as refused:
        pm.validate_job(job({"command": "true"}), s)
    assert refused.value.field == "enable_commands" and "enable_commands" in refused.value.message
    record = execute_job(pm, job({"command": "true"}), JobContext(job({"command": "true"}), s))
    assert record["state"] == "failed" and "enable_commands" in record["error"]


@pytest.mark.parametrize("payload", [
    None, "echo hi", {}, {"command": ""}, {"command": "   "}, {"command": 3}, {"command": "a\0b"},
    {"command": "x" * 100_001}, {"command": "true", "extra": 1},
    {"command": "true", "dir": ""}, {"command": "true", "dir": 5},
    {"command": "true", "env": []}, {"command": "true", "env": {"A": 1}}, {"command": "true", "env": {"A=B": "x"}},
    {"command": "true", "env": {"": "x"}}, {"command": "true", "env": {"A": "x\0"}},
    {"command": "true", "memory_in_mb": 0}, {"command": "true", "memory_in_mb": "100"},
    {"command": "true", "memory_in_mb": True}, {"command": "true", "memory_in_mb": 1.5},
    {"command": "true", "disk_in_mb": -1}, {"command": "true", "disk_in_mb": 2 ** 40},
    {"command": "true", "log_rate_limit_in_bytes_per_second": -2},
    {"command": "true", "log_rate_limit_in_bytes_per_second": "fast"},
])
def test_bad_payloads_are_refused(tmp_path, payload):
    s = settings(tmp_path)
    with pytest.raises(ValidationError) as refused:
        PluginManager.load(s).validate_job(job(payload), s)
    assert refused.value.field == "payload"


def test_good_payloads_are_accepted(tmp_path):
    s = settings(tmp_path)
    pm = PluginManager.load(s)
    pm.validate_job(job({"command": "true", "dir": "/tmp", "env": {"A": "1", "B": ""}, "memory_in_mb": 1024,
                         "disk_in_mb": 1024, "log_rate_limit_in_bytes_per_second": -1}), s)
    pm.validate_job(job({"command": "true", "log_rate_limit_in_bytes_per_second": 0}), s)


def test_the_kind_has_threads_of_its_own(tmp_path):
    assert PluginManager.load(settings(tmp_path, command_concurrency=7)).kinds()["command"].concurrency == 7


def test_the_exit_message_names_signals():
    assert command_process.exit_message(0) == "Exited with status 0"
    assert command_process.exit_message(-15) == "Killed by signal SIGTERM"


def test_timeouts_are_not_retried_either(tmp_path):
    pm = PluginManager.load(settings(tmp_path))
    assert pm.retry_decision(job({"command": "true"}), JobTimeout("timed out after 1 s")) is False
    assert pm.retry_decision(job({"command": "true"}), CommandFailed("Exited with status 1")) is False
