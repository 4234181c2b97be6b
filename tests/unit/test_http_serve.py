"""``serve()`` in a real process: startup facts, a shared port, 503 health without a broker, clean stop."""
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from tubeway.broker.http.app import parse_address
from tubeway.core.errors import ConfigError

DEADLINE = 20.0
PROGRAM = """
import sys
from tubeway.core.settings import load_settings
from tubeway.broker.http.app import serve
serve(load_settings({"http": sys.argv[1], "broker": sys.argv[2], "request_timeout": 0.5}, env={}))
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FrontEnd:
    """One ``serve()`` process whose stderr lines are collected as they come."""

    def __init__(self, http, broker, cwd):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen([sys.executable, "-c", PROGRAM, http, broker], cwd=cwd, env=env,
                                        stderr=subprocess.PIPE, text=True)
        self.lines = []
        self._queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stderr:
            self._queue.put(line)

    def wait_for(self, pattern):
        """The first match of ``pattern`` in the log, waiting up to the deadline."""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            for line in self.lines:
                match = re.search(pattern, line)
                if match:
                    return match
            try:
                self.lines.append(self._queue.get(timeout=0.1))
            except queue.Empty:
                if self.process.poll() is not None and self._queue.empty():
                    break
        raise AssertionError(f"{pattern!r} not logged; log so far:\n{''.join(self.lines)}")

    def stop(self):
        """SIGTERM, then the exit code (killing it past the deadline)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


@pytest.mark.timeout(120)
def test_serve_shares_a_port_answers_and_stops_cleanly(tmp_path):
    broker = f"tcp://127.0.0.1:{free_port()}"
    first = FrontEnd("127.0.0.1:0", broker, tmp_path)
    second = None
    try:
        port = int(first.wait_for(r"listening: http://127\.0\.0\.1:(\d+)").group(1))
        first.wait_for(re.escape(f"broker: {broker}"))
        first.wait_for(r"plugins: \S+")
        second = FrontEnd(f"127.0.0.1:{port}", broker, tmp_path)
        second.wait_for(rf"listening: http://127\.0\.0\.1:{port}")
        reply = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=DEADLINE)
        assert reply.status_code == 503
        assert reply.json()["status"] == "unavailable"
        assert requests.get(f"http://127.0.0.1:{port}/nope", timeout=DEADLINE).status_code == 404
    finally:
        codes = [front.stop() for front in (first, second) if front is not None]
    assert codes == [0, 0]
    first.wait_for("stopping")


def test_parse_address():
    assert parse_address("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_address("[::1]:80") == ("::1", 80)
    for bad in ("8080", "host:", "host:99999", ":80", None):
        with pytest.raises(ConfigError):
            parse_address(bad)
