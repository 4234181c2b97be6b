"""The tubeway command: flags, the settings table, refusals, and process supervision.

The command runs as ``python -m tubeway.core.cli`` in a subprocess that inherits
this interpreter's environment (so PYTHONPATH works before the package is installed).
"""
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tubeway.core import cli, logs
from tubeway.core.settings import Settings, load_settings

HERE_NOT_ROOT = os.path.dirname(os.path.abspath(__file__))


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUBEWAY_") and k != "QUEUE_DEFAULT_TIMEOUT"}
    env.update(extra)
    return env


def run_cli(*args, env=None, timeout=30):
    # Run outside the checkout: there its top-level tubeway/ folder would shadow the package.
    return subprocess.run(
        [sys.executable, "-m", "tubeway.core.cli", *args],
        env=env or clean_env(), capture_output=True, text=True, timeout=timeout, cwd=HERE_NOT_ROOT,
    )


def table_rows(output):
    rows = {}
    for line in output.splitlines()[1:]:
        name, value, source = line.split()[:3]
        rows[name] = (value, source)
    return rows


@pytest.fixture
def no_tubeway_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("TUBEWAY_") or name == "QUEUE_DEFAULT_TIMEOUT":
            monkeypatch.delenv(name)


def test_settings_command_shows_values_and_sources(tmp_path):
    config = tmp_path / "tw.toml"
    config.write_text("worker_threads = 9\nprocesses = 1\n")
    env = clean_env(TUBEWAY_PROCESSES="3", TUBEWAY_CONFIG=str(config), TUBEWAY_AUTH_TOKENS="secret")
    result = run_cli("settings", "--lease-seconds", "42", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:4] == ["NAME", "VALUE", "SOURCE", "HELP"]
    rows = table_rows(result.stdout)
    assert rows["lease_seconds"] == ("42", "cli")
    assert rows["processes"] == ("3", "env")
    assert rows["worker_threads"] == ("9", "config")
    assert rows["http"] == ("127.0.0.1:8080", "default")
    assert rows["auth_tokens"][1] == "env"
    assert "secret" not in result.stdout


def test_invalid_setting_exits_2_naming_it():
    result = run_cli("settings", "--processes", "lots")
    assert result.returncode == 2
    assert "'processes'" in result.stderr and "lots" in result.stderr


@pytest.mark.parametrize("command", ["up", "http"])
def test_refuses_non_loopback_without_tokens(command):
    result = run_cli(command, "--http", "0.0.0.0:8080")
    assert result.returncode == 2
    assert "refusing" in result.stderr and "0.0.0.0:8080" in result.stderr
    assert "--insecure-no-auth" in result.stderr and "TUBEWAY_AUTH_TOKENS" in result.stderr


def test_version_and_help():
    assert run_cli("--version").stdout.startswith("tubeway ")
    result = run_cli("--help")
    assert result.returncode == 0
    for command in cli.COMMANDS:
        assert command in result.stdout
    assert run_cli().returncode == 2


def parse(argv):
    args = cli.build_parser().parse_args(argv)
    return args, cli.resolve_settings(args)


def test_flags_before_and_after_the_subcommand(no_tubeway_env):
    args, (settings, supervised) = parse(["--processes", "3", "worker", "--worker-threads", "2"])
    assert args.command == "worker" and not supervised
    assert (settings.processes, settings.worker_threads) == (3, 2)
    assert settings.source("processes") == "cli"
    assert settings.source("lease_seconds") == "default"


def test_repeatable_auth_token_and_bool_flags(no_tubeway_env):
    _, (settings, _) = parse(["up", "--auth-token", "a", "--auth-token", "b", "--enable-commands"])
    assert settings.auth_tokens == ["a", "b"]
    assert settings.enable_commands is True and settings.insecure_no_auth is False


def test_exposure_check_allows_tokens_or_explicit_insecure(no_tubeway_env):
    for argv in (["up", "--http", "0.0.0.0:1", "--auth-token", "t"],
                 ["up", "--http", "0.0.0.0:1", "--insecure-no-auth"],
                 ["up", "--http", "localhost:1"], ["up", "--http", "[::1]:1"]):
        cli.check_exposure(parse(argv)[1][0])


def test_children_get_exactly_the_parents_settings(no_tubeway_env, monkeypatch):
    settings = load_settings({"processes": "7", "auth_tokens": ["t"], "plugins": "a,b"}, env={})
    env = cli.child_env(settings)
    monkeypatch.setenv(cli.SETTINGS_ENV, env[cli.SETTINGS_ENV])
    _, (child, supervised) = parse(["worker", "--processes", "1"])
    assert supervised
    assert child.as_dict() == settings.as_dict()
    assert child.sources() == settings.sources()
    assert cli.SETTINGS_ENV not in os.environ
    assert json.loads(env[cli.SETTINGS_ENV])["values"]["processes"] == 7


def sleeper(seconds=60):
    return [sys.executable, "-c", f"import time; time.sleep({seconds})"]


def test_supervisor_stops_everyone_when_a_child_dies():
    supervisor = cli.Supervisor("test", stop_timeout=5, handle_signals=False)
    survivor = supervisor.start("survivor", sleeper())
    supervisor.start("quitter", [sys.executable, "-c", "raise SystemExit(3)"], tier=1)
    assert supervisor.run(poll=0.02) == 3
    assert survivor.poll() is not None


def test_supervisor_kills_children_that_ignore_terminate():
    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('ok', flush=True); time.sleep(60)")
    supervisor = cli.Supervisor("test", stop_timeout=0.2)
    proc = subprocess.Popen([sys.executable, "-c", stubborn], stdout=subprocess.PIPE, text=True)
    supervisor.children.append(("stubborn", proc, 0))
    assert proc.stdout.readline() == "ok\n"
    supervisor.stop()
    assert proc.returncode == -signal.SIGKILL
    proc.stdout.close()


SUPERVISED = textwrap.dedent("""
    import os, sys
    from tubeway.core.cli import Supervisor
    supervisor = Supervisor("test", stop_timeout=5)
    children = [supervisor.start(name, [sys.executable, "-c", "import time; time.sleep(60)"], tier=tier)
                for name, tier in (("broker", 0), ("http", 1), ("worker", 1))]
    same_group = all(os.getpgid(c.pid) == os.getpgid(0) for c in children)
    print(" ".join(str(c.pid) for c in children), same_group, flush=True)
    sys.exit(supervisor.run(poll=0.02))
""")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_supervisor_stops_children_on_signal(signum):
    proc = subprocess.Popen([sys.executable, "-c", SUPERVISED], env=clean_env(), stdout=subprocess.PIPE, text=True,
                            cwd=HERE_NOT_ROOT)
    try:
        *pids, same_group = proc.stdout.readline().split()
        assert same_group == "True"
        proc.send_signal(signum)
        assert proc.wait(timeout=15) == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    deadline = time.monotonic() + 5
    for pid in map(int, pids):
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not alive(pid)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_settings_round_trip_through_json():
    settings = load_settings({"db": "postgresql://tw@127.0.0.1:5432/tw"}, env={})
    data = json.loads(json.dumps(settings.as_dict()))
    assert Settings.from_dict(data).as_dict() == settings.as_dict()


def test_refusal_names_the_address(free_port):
    port = free_port()
    assert port != free_port()
    result = run_cli("http", "--http", f"10.1.2.3:{port}")
    assert result.returncode == 2 and f"10.1.2.3:{port}" in result.stderr


def test_log_lines_name_time_role_and_pid():
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    logs.setup_logging("broker", "info", stream=stream)
    try:
        logs.startup_facts("broker", {"endpoint": "tcp://127.0.0.1:1", "storage": "sqlite:///x.db"})
        logging.getLogger("tubeway.broker").debug("hidden at INFO")
        logs.set_role("worker-2")
        logs.get_logger("worker").warning("after a fork")
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_tubeway", False)]:
            root.removeHandler(handler)
        root.setLevel(level)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert re.match(rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{{3}} broker\[{os.getpid()}\] INFO tubeway.broker: "
                    r"endpoint: tcp://127.0.0.1:1$", lines[0])
    assert lines[1].endswith("storage: sqlite:///x.db")
    assert f"worker-2[{os.getpid()}] WARNING tubeway.worker: after a fork" in lines[2]


EXPOSED_BROKERS = ["tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://10.1.2.3:5555", "tcp://broker.example.com:5555",
                   "tcp://[::]:5555", "tcp://eth0:5555"]
LOCAL_BROKERS = ["tcp://127.0.0.1:5555", "tcp://127.0.0.2:5555", "tcp://localhost:5555", "tcp://[::1]:5555",
                 "ipc:///tmp/tubeway.sock", "inproc://broker"]


@pytest.fixture
def roles_not_run(monkeypatch):
    """Every command's handler replaced by one recording it ran: ``main`` gets as far as its start checks."""
    ran = []
    for command in cli.HANDLERS:
        monkeypatch.setitem(cli.HANDLERS, command, lambda settings, supervised, command=command: ran.append(command))
    return ran


@pytest.mark.parametrize("command", ["broker", "up"])
@pytest.mark.parametrize("endpoint", EXPOSED_BROKERS)
def test_broker_and_up_refuse_to_bind_a_non_loopback_broker(no_tubeway_env, roles_not_run, capsys, command, endpoint):
    assert cli.main([command, "--broker", endpoint]) == 2
    assert roles_not_run == []
    message = capsys.readouterr().err
    assert f"refusing to bind the broker on {endpoint}" in message
    assert "--broker" in message and "--insecure-no-auth" in message


@pytest.mark.parametrize("command", ["broker", "up"])
def test_a_non_loopback_broker_binds_with_insecure_no_auth(no_tubeway_env, roles_not_run, command):
    for endpoint in EXPOSED_BROKERS:
        cli.main([command, "--broker", endpoint, "--insecure-no-auth"])
    assert roles_not_run == [command] * len(EXPOSED_BROKERS)


@pytest.mark.parametrize("endpoint", LOCAL_BROKERS)
def test_loopback_ipc_and_inproc_brokers_bind(no_tubeway_env, roles_not_run, endpoint):
    cli.main(["broker", "--broker", endpoint])
    assert roles_not_run == ["broker"]


@pytest.mark.parametrize("command", ["worker", "http"])
def test_worker_and_http_connect_to_a_remote_broker(no_tubeway_env, roles_not_run, command):
    cli.main([command, "--broker", "tcp://10.1.2.3:5555"])
    assert roles_not_run == [command]
