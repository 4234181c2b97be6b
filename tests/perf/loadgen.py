"""HTTP load for the submit benchmark: ``wrk`` with a Lua POST script, or a Python fallback.

Both answer the same :class:`Load` (requests per second, non-2xx count, latency
percentiles). One run uses one tool for every target, so their ratio is fair.
The Python generator runs keep-alive connections from one asyncio loop; it is
slower than wrk and so measures lower absolute numbers, never a different ratio
source.
"""
import asyncio
import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
import time

from harness import HERE, percentile

BODY = b'{"kind":"noop"}'
WRK_SCRIPT = HERE / "post.lua"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclasses.dataclass
class Load:
    """What one load run measured (latencies in ms)."""

    tool: str
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self):
        """Successful requests per second."""
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0


#: ``"wrk"`` or ``"python"`` to force a tool (``run.py --load-tool``); None picks wrk when installed.
PREFERRED = None


def tool_name():
    """The forced tool, else ``"wrk"`` when it is installed, else ``"python"``."""
    if PREFERRED:
        return PREFERRED
    return "wrk" if shutil.which("wrk") else "python"


def tool_version():
    """A one-line description of the load tool."""
    if tool_name() == "python":
        return "python asyncio keep-alive generator" + ("" if PREFERRED else " (wrk not installed)")
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk"


def post_load(url, connections, seconds, tool=None, body=BODY):
    """POST ``body`` (JSON bytes; a no-op native job by default) to ``url`` over ``connections`` connections."""
    if (tool or tool_name()) == "wrk":
        return _wrk(url, connections, seconds, body)
    return asyncio.run(_python_load(url, connections, seconds, body))


# -- wrk ------------------------------------------------------------------------------------
def _wrk(url, connections, seconds, body=BODY):
    threads = 1  # wrk needs little CPU; the second core is left to the servers
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.read_text().replace(BODY.decode(), body.decode().replace("'", "\\'")))
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
            "--timeout", "5s", "-s", script.name, url]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        os.unlink(script.name)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    return parse_wrk(out.stdout)


def _duration_ms(text):
    number, unit = re.fullmatch(r"([\d.]+)([a-z]+)", text).groups()
    return float(number) * _UNITS[unit]


def parse_wrk(text):
    """A :class:`Load` from wrk's ``--latency`` report."""
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+),", text)
    if total is None:
        raise RuntimeError(f"could not read wrk's report:\n{text}")
    seconds = _duration_ms(total.group(2) + total.group(3)) / 1e3
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    p50 = re.search(r"^\s*50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s*99%\s+(\S+)", text, re.M)
    return Load("wrk", int(total.group(1)), seconds, errors,
                _duration_ms(p50.group(1)) if p50 else float("nan"),
                _duration_ms(p99.group(1)) if p99 else float("nan"))


# -- Python fallback ------------------------------------------------------------------------
class _Connection(asyncio.Protocol):
    """One keep-alive connection sending the same POST again as soon as its answer is read."""

    def __init__(self, request, deadline, latencies, statuses, closed):
        self.request, self.deadline = request, deadline
        self.latencies, self.statuses, self.closed = latencies, statuses, closed
        self.buffer = b""
        self.need = None
        self.sent_at = 0.0
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self._send()

    def _send(self):
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data):
        self.buffer += data
        while True:
            if self.need is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self.buffer[:end].lower()
                length = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
                self.status = int(head[9:12])
                self.need = end + 4 + (int(length.group(1)) if length else 0)
            if len(self.buffer) < self.need:
                return
            self.buffer, self.need = self.buffer[self.need:], None
            now = time.perf_counter()
            self.latencies.append((now - self.sent_at) * 1e3)
            self.statuses.append(self.status)
            if now < self.deadline:
                self._send()
            else:
                self.transport.close()
                return

    def connection_lost(self, exc):
        if not self.closed.done():
            self.closed.set_result(exc)


async def _python_load(url, connections, seconds, body=BODY):
    match = re.fullmatch(r"http://([^:/]+):(\d+)(/.*)", url)
    host, port, path = match.group(1), int(match.group(2)), match.group(3)
    request = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    loop = asyncio.get_running_loop()
    latencies, statuses, waits = [], [], []
    started = time.perf_counter()
    deadline = started + seconds
    for _ in range(connections):
        closed = loop.create_future()
        waits.append(closed)
        await loop.create_connection(
            lambda c=closed: _Connection(request, deadline, latencies, statuses, c), host, port)
    await asyncio.wait_for(asyncio.gather(*waits), seconds + 30)
    elapsed = time.perf_counter() - started
    errors = sum(1 for status in statuses if not 200 <= status < 400)
    latencies.sort()
    return Load("python", len(statuses), elapsed, errors, percentile(latencies, 50), percentile(latencies, 99))
