"""Start real Tubeway processes for a benchmark and always stop them.

A :class:`Stack` owns one temporary directory (the processes' working directory,
their ``--data-dir`` and their log files), free 127.0.0.1 ports for the broker and
the HTTP front end, and every process it started. Each process is the leader of its
own process group, so stopping it also stops the children it forked (``up``, the
worker pool); :meth:`Stack.close` does that for every one of them, whatever happened.
"""
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tubeway.core.client import BrokerClient
from tubeway.core.errors import BrokerUnavailable

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
STOP_GRACE = 5.0
READY_TIMEOUT = 30.0


def tubeway_command():
    """The ``tubeway`` console script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "tubeway"
    if beside.exists():
        return str(beside)
    return shutil.which("tubeway") or str(ROOT / ".venv" / "bin" / "tubeway")


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env():
    """Our environment without TUBEWAY_* variables, so only the flags we pass configure a process."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TUBEWAY_")}


def rss_mb(pid):
    """Resident memory of one process in MB (VmRSS of /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Process:
    """One started process, leader of its own process group, logging to a file.

    ``env`` adds variables to (or overrides them in) :func:`clean_env`.
    """

    def __init__(self, name, argv, cwd, log_path, env=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.popen = subprocess.Popen(argv, cwd=cwd, env={**clean_env(), **(env or {})}, stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.popen.pid

    def alive(self):
        """True while the leader runs."""
        return self.popen.poll() is None

    def check_alive(self):
        """Raise with the tail of the log when the process has exited."""
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with code {self.popen.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines=25):
        """The last lines the process printed."""
        try:
            text = Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join("    " + line for line in text.splitlines()[-lines:])

    def stop(self):
        """SIGTERM the group, SIGKILL it after :data:`STOP_GRACE` s (and any straggler anyway)."""
        self._signal_group(signal.SIGTERM)
        try:
            self.popen.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            pass
        self._signal_group(signal.SIGKILL)
        try:
            self.popen.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            print(f"warning: {self.name} (pid {self.pid}) did not die after SIGKILL", file=sys.stderr)

    def _signal_group(self, signum):
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def poll(predicate, timeout, what, interval=0.05, processes=()):
    """Call ``predicate`` until it returns something truthy; raise after ``timeout`` s.

    ``processes`` are checked on every round, so a crash is reported at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        for process in processes:
            process.check_alive()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


class Stack:
    """Tubeway processes sharing one temporary directory, broker endpoint and HTTP port.

    Use it as a context manager: leaving the block stops every process and removes
    the directory. ``settings`` are extra flags every ``tubeway`` process gets
    (``{"sqlite_synchronous": "NORMAL"}`` becomes ``--sqlite-synchronous NORMAL``).
    """

    def __init__(self, **settings):
        self.dir = Path(tempfile.mkdtemp(prefix="tubeway-bench-"))
        self.data_dir = self.dir / "data"
        self.broker_endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.http_port = free_port()
        self.settings = settings
        self.processes = []
        self._client = None

    @property
    def http_url(self):
        """Base URL of the HTTP front end."""
        return f"http://127.0.0.1:{self.http_port}"

    def flags(self, **extra):
        """Command line flags: the stack's addresses and data dir, then its settings and ``extra``."""
        values = {"data_dir": str(self.data_dir), "broker": self.broker_endpoint,
                  "http": f"127.0.0.1:{self.http_port}", **self.settings, **extra}
        argv = []
        for name, value in values.items():
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):  # a switch: present or absent
                argv += [flag] if value else []
            else:
                argv += [flag, str(value)]
        return argv

    def start(self, name, argv, env=None):
        """Start any command in the stack's directory (``env``: extra variables); stopped on :meth:`close`."""
        process = Process(name, argv, self.dir, self.dir / f"{name}.log", env)
        self.processes.append(process)
        return process

    def tubeway(self, role, env=None, **extra):
        """Start ``tubeway <role>`` with the stack's flags (``env``: extra variables)."""
        return self.start(role, [tubeway_command(), role, *self.flags(**extra)], env)

    # -- readiness ----------------------------------------------------------------------
    def client(self):
        """A broker client of this stack (one, reused)."""
        if self._client is None:
            self._client = BrokerClient(self.broker_endpoint, timeout=30.0)
        return self._client

    def wait_broker(self, workers=0, timeout=READY_TIMEOUT):
        """Poll the broker's health until it answers and at least ``workers`` workers are registered."""
        probe = BrokerClient(self.broker_endpoint, timeout=0.5)

        def ready():
            try:
                return probe.health()["workers"] >= workers
            except BrokerUnavailable:
                return False

        try:
            poll(ready, timeout, f"broker with {workers} worker(s) ready", processes=self.processes)
        finally:
            probe.close()

    def wait_http(self, timeout=READY_TIMEOUT, port=None):
        """Poll ``GET /healthz`` until it answers 200."""
        wait_http(port or self.http_port, timeout, self.processes)

    # -- stop ---------------------------------------------------------------------------
    def close(self):
        """Stop every process (last started first) and remove the directory."""
        if self._client is not None:
            self._client.close()
        for process in reversed(self.processes):
            process.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def http_ok(port, path="/healthz"):
    """True when ``GET path`` on 127.0.0.1:port answers 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def wait_http(port, timeout=READY_TIMEOUT, processes=()):
    """Poll ``GET /healthz`` on 127.0.0.1:port until it answers 200."""
    poll(lambda: http_ok(port), timeout, f"HTTP on port {port} ready", processes=processes)


def percentile(sorted_values, pct):
    """The nearest-rank ``pct`` percentile of already sorted values (NaN when empty)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


def submit_batches(client, spec, total, batch):
    """Submit ``total`` copies of ``spec`` in batches of ``batch``; returns the seconds it took."""
    started = time.perf_counter()
    sent = 0
    while sent < total:
        count = min(batch, total - sent)
        client.submit([spec] * count, timeout=60)
        sent += count
    return time.perf_counter() - started


def state_counts(client):
    """Job counts per state over every namespace and queue."""
    totals = {}
    for queue in client.queues()["queues"]:
        for state, count in queue["counts"].items():
            totals[state] = totals.get(state, 0) + count
    return totals


def wait_all_done(client, total, timeout, what, stack, interval=0.05):
    """Poll until ``total`` jobs are done; any failed or cancelled job is an error (a benchmark counts successes)."""
    def all_done():
        counts = state_counts(client)
        if counts.get("failed") or counts.get("cancelled"):
            raise AssertionError(f"{what}: not every job succeeded: {counts}")
        return counts.get("done", 0) >= total
    poll(all_done, timeout, what, interval=interval, processes=stack.processes)


def count_label(n):
    """1000000 -> "1M", 250000 -> "250k", 100 -> "100"."""
    if n >= 1_000_000 and n % 100_000 == 0:
        return f"{n / 1_000_000:g}M"
    if n >= 1000 and n % 100 == 0:
        return f"{n / 1000:g}k"
    return str(n)
