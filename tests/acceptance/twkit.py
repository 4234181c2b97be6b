"""Real Tubeway processes for acceptance tests, started and stopped with pytest-xprocess."""
import contextlib
import itertools
import os
import signal
import sys
from pathlib import Path

import psutil
import requests
from xprocess import ProcessStarter

from polling import poll_until  # noqa: F401 - tests import it from here
from ports import find_free_port
from procs import alive as _alive

from tubeway.core.client import BrokerClient
from tubeway.core.errors import BrokerUnavailable

TUBEWAY = str(Path(sys.executable).with_name("tubeway"))
_names = itertools.count(1)



class Cluster:
    """One test's Tubeway: its ports, data directory and the processes it started."""

    def __init__(self, xprocess, tmp_path, free_port):
        self.xprocess = xprocess
        self.tmp_path = tmp_path
        self.http_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.broker = f"tcp://127.0.0.1:{free_port()}"
        self.data_dir = tmp_path / "data"
        self.names = []
        self.tokens = []

    def flags(self, extra):
        base = ["--data-dir", str(self.data_dir), "--http", f"127.0.0.1:{self.http_port}", "--broker", self.broker,
                "--heartbeat-seconds", "0.3", "--worker-liveness-seconds", "1.5"]
        return base + [str(x) for x in extra]

    def start(self, role, *extra, ready=None, env=None):
        """Start ``tubeway ROLE`` with this cluster's flags; returns the process's xprocess name."""
        name = f"tubeway-{role}-{next(_names)}"
        args = [TUBEWAY, role, *self.flags(extra)]
        check = ready or self._default_ready(role)
        process_env = {k: v for k, v in os.environ.items() if not k.startswith("TUBEWAY_")}
        process_env.update(env or {})
        cwd = str(self.tmp_path)

        class Starter(ProcessStarter):
            timeout = 30
            terminate_on_interrupt = True
            popen_kwargs = {"cwd": cwd}
            env = process_env

            @property
            def args(self):
                return args

            def startup_check(self):
                return check()

        self.xprocess.ensure(name, Starter)
        self.names.append(name)
        return name

    def up(self, *extra, env=None):
        """Start ``tubeway up`` and wait until /healthz answers 200."""
        return self.start("up", *extra, env=env)

    def _default_ready(self, role):
        if role in ("up", "http"):
            return self.healthy if role == "up" else self.http_answers
        if role == "broker":
            return self.broker_answers
        return lambda: True

    def healthy(self):
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def http_answers(self):
        try:
            requests.get(f"{self.url}/healthz", timeout=1)
            return True
        except requests.RequestException:
            return False

    def broker_answers(self):
        with BrokerClient(self.broker, timeout=0.5) as client:
            try:
                client.health()
                return True
            except BrokerUnavailable:
                return False

    def workers(self):
        with BrokerClient(self.broker, timeout=2) as client:
            return client.health()["workers"]

    def pid(self, name):
        return self.xprocess.getinfo(name).pid

    def kill(self, name, sig=signal.SIGKILL):
        """Send a signal to one started process (not its children)."""
        os.kill(self.pid(name), sig)
        poll_until(lambda: not _alive(self.pid(name)), what=f"{name} exit")

    def children(self, name):
        return psutil.Process(self.pid(name)).children(recursive=True)

    def stop(self):
        for name in reversed(self.names):
            info = self.xprocess.getinfo(name)
            if info.isrunning():
                info.terminate(kill_proc_tree=True, timeout=15)
        self.names.clear()

    def log(self, name):
        return Path(self.xprocess.getinfo(name).logpath).read_text(errors="replace")

    # -- HTTP ---------------------------------------------------------------------------
    def headers(self, extra=None):
        headers = {"Authorization": f"Bearer {self.tokens[0]}"} if self.tokens else {}
        headers.update(extra or {})
        return headers

    def request(self, method, path, headers=None, **kwargs):
        kwargs.setdefault("timeout", 30)
        return requests.request(method, self.url + path, headers=self.headers(headers), **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def put(self, path, **kwargs):
        return self.request("PUT", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)


@contextlib.contextmanager
def module_cluster(xprocess, base, token, *flags):
    """One ``tubeway up`` with the auth token ``token`` for a whole module's tests; stopped afterwards."""
    cluster = Cluster(xprocess, base, find_free_port)
    cluster.tokens = [token]
    try:
        cluster.up("--auth-token", token, *flags)
        yield cluster
    finally:
        cluster.stop()


