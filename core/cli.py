"""The ``tubeway`` command: run one role, all of them (``up``), or print the settings.

Every subcommand takes a flag per setting (see :mod:`tubeway.core.settings`).
``up`` (and ``http`` with several front ends) starts its parts as child processes
of ``python -m tubeway.core.cli <role>`` in its own process group; the children
get exactly the parent's settings through the environment variable
:data:`SETTINGS_ENV`, and nothing else, so flags given to a child are ignored.
"""
import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import time

import tubeway
from tubeway.core import logs
from tubeway.core.errors import ConfigError
from tubeway.core.settings import BY_NAME, SETTINGS, Settings, display, is_local_endpoint, is_loopback, load_settings

#: Environment variable carrying a supervisor's settings (JSON) to its children.
SETTINGS_ENV = "TUBEWAY_SETTINGS_JSON"
#: Role -> (module, function) run by ``tubeway <role>``; imported only when it runs.
ROLES = {
    "broker": ("tubeway.broker.reactor", "serve"),
    "http": ("tubeway.broker.http.app", "serve"),
    "worker": ("tubeway.workers.pool", "serve"),
}
COMMANDS = {
    "up": "Run the broker, the HTTP front end(s) and a worker pool on this machine.",
    "broker": "Run the broker (owns storage, binds --broker).",
    "http": "Run the HTTP front end(s) (--http-processes of them).",
    "worker": "Run a worker pool connected to --broker.",
    "settings": "Print every setting with its value and where it came from.",
}
STOP_TIMEOUT = 10.0
DESCRIPTION = "Tubeway, a durable job and task server: run one role, all of them (up), or print the settings."


class Supervisor:
    """Runs child processes in this process group and stops them together.

    :meth:`run` returns 0 after SIGTERM or SIGINT once every child has stopped, or
    non-zero as soon as a child exits on its own (after stopping the others).
    Children stop in tiers, highest first, so the broker (tier 0) outlives its peers.
    With ``handle_signals`` the signals are caught from the first child on, so one
    that arrives while children are still starting stops them all as well.
    """

    def __init__(self, role, stop_timeout=STOP_TIMEOUT, handle_signals=True):
        self.log = logs.get_logger(role)
        self.stop_timeout = stop_timeout
        self.children = []
        self._signal = None
        self._handle_signals = handle_signals
        self._previous_handlers = {}

    def start(self, name, argv, env=None, tier=0):
        """Start one child (never in a new session: it stays in our process group)."""
        self._catch_signals()
        proc = subprocess.Popen(argv, env=env)
        self.children.append((name, proc, tier))
        self.log.info("started %s: pid %d", name, proc.pid)
        return proc

    def _catch_signals(self):
        if self._handle_signals and not self._previous_handlers:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def run(self, poll=0.1):
        """Watch the children until a signal or a child's exit; return the exit code."""
        self._catch_signals()
        try:
            while self._signal is None:
                for name, proc, _ in self.children:
                    code = proc.poll()
                    if code is not None and self._signal is None:
                        self.log.error("%s (pid %d) exited unexpectedly with code %s; stopping", name, proc.pid, code)
                        self.stop()
                        return code if code > 0 else 1
                time.sleep(poll)
            self.log.info("received %s; stopping", signal.Signals(self._signal).name)
            self.stop()
            return 0
        finally:
            for signum, handler in self._previous_handlers.items():
                signal.signal(signum, handler)
            self._previous_handlers = {}

    def _on_signal(self, signum, frame):
        self._signal = signum

    def stop(self):
        """Terminate the children, tier by tier; kill those still running after the timeout."""
        for tier in sorted({tier for _, _, tier in self.children}, reverse=True):
            procs = [(name, proc) for name, proc, t in self.children if t == tier]
            for _, proc in procs:
                if proc.poll() is None:
                    proc.terminate()
            deadline = time.monotonic() + self.stop_timeout
            for name, proc in procs:
                try:
                    proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.log.warning("%s (pid %d) did not stop in time; killing it", name, proc.pid)
                    proc.kill()
                    proc.wait()


def build_parser():
    """The argument parser: one subcommand per entry of :data:`COMMANDS`, each with every setting's flag."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("settings (also TUBEWAY_<NAME> in the environment)")
    for setting in SETTINGS:
        # SUPPRESS keeps absent flags out of the namespace, so flags work before and after the subcommand.
        kwargs = {"dest": setting.name, "default": argparse.SUPPRESS, "help": setting.help}
        if setting.type == "bool":
            kwargs["action"] = "store_true"
        elif setting.name == "auth_tokens":
            kwargs.update(action="append", metavar="TOKEN", help=setting.help + " (repeatable)")
        else:
            kwargs["metavar"] = setting.name.upper()
        group.add_argument(setting.cli_flag, **kwargs)
    parser = argparse.ArgumentParser(prog="tubeway", usage="%(prog)s COMMAND [--SETTING VALUE ...]", parents=[common],
                                     description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"tubeway {tubeway.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        commands.add_parser(name, parents=[common], help=help_text, description=help_text,
                            usage="%(prog)s [--SETTING VALUE ...]")
    return parser


def resolve_settings(args):
    """``(settings, supervised)``: a supervisor's settings when we are its child, else loaded afresh."""
    payload = os.environ.pop(SETTINGS_ENV, None)
    if payload:
        data = json.loads(payload)
        return Settings.from_dict(data["values"], data.get("sources")), True
    cli_values = {name: getattr(args, name) for name in BY_NAME if hasattr(args, name)}
    return load_settings(cli_values), False


def check_exposure(settings):
    """Refuse to serve a non-loopback address without auth tokens, unless insecure_no_auth."""
    host, _ = settings.http_address
    if settings.auth_tokens or settings.insecure_no_auth or is_loopback(host):
        return
    raise ConfigError(
        f"refusing to serve HTTP on {settings.http} (not a loopback address) without auth tokens: "
        "set TUBEWAY_AUTH_TOKENS or --auth-token, listen on 127.0.0.1, "
        "or pass --insecure-no-auth to serve it open to anyone",
        setting="auth_tokens",
    )


def check_broker_exposure(settings):
    """Refuse to bind the broker's endpoint where other hosts reach it, unless insecure_no_auth.

    Anyone reaching that endpoint may submit jobs and take work: it has no
    authentication. ``ipc://`` and ``inproc://`` endpoints are local.
    """
    if settings.insecure_no_auth or is_local_endpoint(settings.broker):
        return
    raise ConfigError(
        f"refusing to bind the broker on {settings.broker} (not a loopback address): its ZeroMQ endpoint "
        "accepts jobs without authentication; set broker (--broker, TUBEWAY_BROKER) to tcp://127.0.0.1:PORT "
        "or ipc://PATH, or pass --insecure-no-auth to open it to anyone who reaches it",
        setting="broker",
    )


def child_env(settings):
    """The environment a child process gets: ours plus the settings as JSON."""
    env = dict(os.environ)
    env[SETTINGS_ENV] = json.dumps({"values": settings.as_dict(), "sources": settings.sources()})
    return env


def role_argv(role):
    """The command line starting ``role`` as a child process (same interpreter, same settings via env)."""
    return [sys.executable, "-m", "tubeway.core.cli", role]


def run_role(role, settings):
    """Run one role in this process: import its module and call its ``serve(settings)``."""
    logs.setup_logging(role, settings.log_level)
    module_name, function = ROLES[role]
    serve = getattr(importlib.import_module(module_name), function)
    try:
        return serve(settings) or 0
    except KeyboardInterrupt:
        return 0


def cmd_up(settings, supervised):
    """Broker first, then the front ends and the worker pool, each a child process."""
    log = logs.setup_logging("up", settings.log_level)
    logs.startup_facts("up", {"http": settings.http, "broker": settings.broker, "storage": settings.database_url})
    supervisor = Supervisor("up")
    env = child_env(settings)
    supervisor.start("broker", role_argv("broker"), env, tier=0)
    for index in range(settings.http_processes):
        supervisor.start(f"http-{index + 1}", role_argv("http"), env, tier=1)
    supervisor.start("worker pool", role_argv("worker"), env, tier=1)
    code = supervisor.run()
    log.info("stopped (exit code %d)", code)
    return code


def cmd_http(settings, supervised):
    """One front end, or ``http_processes`` of them as children sharing the port."""
    if supervised or settings.http_processes <= 1:
        return run_role("http", settings)
    logs.setup_logging("http", settings.log_level)
    supervisor = Supervisor("http")
    env = child_env(settings)
    for index in range(settings.http_processes):
        supervisor.start(f"http-{index + 1}", role_argv("http"), env)
    return supervisor.run()


def cmd_settings(settings, supervised):
    """Print an aligned table: name, value, source, help."""
    rows = [("NAME", "VALUE", "SOURCE", "HELP")]
    rows += [(s.name, display(s, getattr(settings, s.name)), settings.source(s.name), s.help) for s in SETTINGS]
    rows.append(("database_url", display(BY_NAME["db"], settings.database_url), "derived", "Database used."))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3] for row in rows]
    sys.stdout.write("\n".join(lines) + "\n")  # one write, so `| head` does not break the pipe mid-table
    return 0


HANDLERS = {
    "up": cmd_up,
    "broker": lambda settings, supervised: run_role("broker", settings),
    "http": cmd_http,
    "worker": lambda settings, supervised: run_role("worker", settings),
    "settings": cmd_settings,
}


def main(argv=None):
    """Entry point of the ``tubeway`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings, supervised = resolve_settings(args)
        if args.command in ("up", "http"):
            check_exposure(settings)
        if args.command in ("up", "broker"):  # worker and http connect to --broker: nothing to refuse
            check_broker_exposure(settings)
        return HANDLERS[args.command](settings, supervised)
    except ConfigError as exc:  # also from a role refusing its settings at start
        print(f"tubeway: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
