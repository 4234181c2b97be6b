"""A fast loopback HTTP sink: the endpoint the callback and fraction benchmarks call.

One asyncio process parses just enough HTTP/1.1 (request line, headers, a
``Content-Length`` body, keep-alive) and answers every request ``200 {}``. It counts
the requests it served; for a fraction run it also records each leaf's ``_min`` and
``_max`` (from the JSON body) in a bytearray with one byte per leaf, so exact
coverage can be checked at the end without keeping the bodies.

Control paths (not counted):

* ``GET /healthz``: 200, for readiness.
* ``GET /_sink/count``: the number of requests counted, as text.
* ``GET /_sink/stats``: ``{"count", "first_at", "last_at"}`` (epoch seconds of the
  first and last counted request, or null) and, when leaves are tracked,
  ``{"leaves", "covered", "duplicates", "bad", "samples"}`` (the first
  duplicate leaves and bad bodies, with their arrival times).
* ``POST /_sink/reset``: zero the counters; a JSON body ``{"min", "max", "gap"}``
  starts tracking that fraction's leaves (``{}`` stops tracking).

Run: ``python tests/perf/fast_sink.py PORT`` (listens on 127.0.0.1 only). The
benchmarks talk to it through :class:`SinkClient`.
"""
import asyncio
import http.client
import json
import signal
import sys
import time

try:
    import orjson
    loads = orjson.loads
except ImportError:  # the sink also runs on a bare interpreter
    loads = json.loads

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
MAX_HEAD = 64 * 1024
#: Duplicate leaves and bad bodies whose details the stats keep, for diagnosis.
MAX_SAMPLES = 20


def answer(status, body, close=False):
    """A whole HTTP/1.1 response with a JSON or text body."""
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 411: "Length Required"}[status]
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + ("Connection: close\r\n" if close else "") + "\r\n").encode() + body


class Leaves:
    """One fraction's leaves, one byte each: how often each leaf's exact range arrived (capped at 255)."""

    def __init__(self, low, high, gap):
        self.low, self.high, self.gap = low, high, gap
        self.marks = bytearray((high - low) // gap + 1)
        self.duplicates = 0
        self.bad = 0
        self.samples = []  # the first duplicate leaves and bad bodies, with when they arrived

    def record(self, body):
        """Mark the leaf a request body names; a body with wrong or missing bounds counts as bad."""
        try:
            data = loads(body)
            start, end = data["_min"], data["_max"]
            index, offset = divmod(start - self.low, self.gap)
        except (ValueError, KeyError, TypeError):
            self._bad(body)
            return
        if offset or not 0 <= index < len(self.marks) or end != min(start + self.gap - 1, self.high):
            self._bad(body)
            return
        seen = self.marks[index]
        if seen:
            self.duplicates += 1
            self._sample({"duplicate": index, "_min": start, "at": time.time()})
        if seen < 255:
            self.marks[index] = seen + 1

    def _bad(self, body):
        self.bad += 1
        self._sample({"bad": body[:200].decode("utf-8", "replace"), "at": time.time()})

    def _sample(self, sample):
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(sample)

    def summary(self):
        """``{"leaves", "covered", "duplicates", "bad", "samples"}`` (samples: the first duplicates and bad bodies)."""
        return {"leaves": len(self.marks), "covered": len(self.marks) - self.marks.count(0),
                "duplicates": self.duplicates, "bad": self.bad, "samples": self.samples}


class Sink:
    """The counters every connection shares."""

    def __init__(self):
        self.reset(None)

    def reset(self, bounds):
        """Zero the counters; track ``bounds`` (``{"min", "max", "gap"}``) when given."""
        self.count = 0
        self.first_at = self.last_at = None
        self.leaves = Leaves(bounds["min"], bounds["max"], bounds["gap"]) if bounds else None

    def hit(self, body):
        """Count one request to a path that is not a control path."""
        now = time.time()
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        self.count += 1
        if self.leaves is not None:
            self.leaves.record(body)

    def stats(self):
        """The stats document (see the module docstring)."""
        stats = {"count": self.count, "first_at": self.first_at, "last_at": self.last_at}
        if self.leaves is not None:
            stats.update(self.leaves.summary())
        return stats

    def control(self, method, path, body):
        """The response of a control path, or None when ``path`` is not one."""
        if path == "/healthz":
            return answer(200, b'{"ok":true}')
        if path == "/_sink/count":
            return answer(200, str(self.count).encode())
        if path == "/_sink/stats":
            return answer(200, json.dumps(self.stats()).encode())
        if path == "/_sink/reset" and method == "POST":
            try:
                bounds = json.loads(body) if body else None
                self.reset(bounds or None)
            except (ValueError, KeyError, TypeError) as exc:
                return answer(400, json.dumps({"error": str(exc)}).encode())
            return answer(200, b"{}")
        return None


class Connection(asyncio.Protocol):
    """One client connection: parse requests as they arrive, answer each in order."""

    def __init__(self, sink):
        self.sink = sink
        self.buffer = bytearray()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buffer += data
        out = []
        close = False
        while not close:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    out.append(answer(400, b'{"error":"head too large"}', close=True))
                    close = True
                break
            request = self._parse(bytes(self.buffer[:end]))
            if request is None:
                out.append(answer(400, b'{"error":"bad request"}', close=True))
                close = True
                break
            method, path, length, close = request
            if length < 0:
                out.append(answer(411, b'{"error":"Content-Length required"}', close=True))
                close = True
                break
            need = end + 4 + length
            if len(self.buffer) < need:
                break
            body = bytes(self.buffer[end + 4:need])
            del self.buffer[:need]
            response = self.sink.control(method, path, body)
            if response is None:
                self.sink.hit(body)
                response = OK
            out.append(response)
        if out:
            self.transport.write(b"".join(out))
        if close:
            self.transport.close()

    @staticmethod
    def _parse(head):
        """``(method, path, content_length, close)``; length -1 for a chunked body; None when unreadable."""
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            return None
        method, target, version = parts
        length, close = 0, version == b"HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    return None
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                length = -1
            elif name == b"connection":
                value = value.strip().lower()
                close = value == b"close" or (close and value != b"keep-alive")
        path = target.split(b"?", 1)[0].decode("latin-1")
        return method.decode("latin-1"), path, length, close


async def serve(port):
    """Serve on 127.0.0.1:``port`` until SIGTERM or SIGINT."""
    sink = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(sink), "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()


class SinkClient:
    """The benchmark's side: the sink's URL, counters and coverage."""

    def __init__(self, port):
        self.port = port
        self.url = f"http://127.0.0.1:{port}/hit"

    def _call(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10.0)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            if response.status != 200:
                raise RuntimeError(f"sink answered {response.status} to {method} {path}: {data[:200]!r}")
            return data
        finally:
            conn.close()

    def count(self):
        """Requests counted since the last reset."""
        return int(self._call("GET", "/_sink/count"))

    def stats(self):
        """The stats document (see the module docstring)."""
        return json.loads(self._call("GET", "/_sink/stats"))

    def reset(self, low=None, high=None, gap=None):
        """Zero the counters; with bounds, track that fraction's leaves."""
        bounds = {"min": low, "max": high, "gap": gap} if gap else {}
        self._call("POST", "/_sink/reset", json.dumps(bounds).encode())


def start_sink(stack, name="sink"):
    """Start the sink in ``stack`` on a free port, wait until it answers; returns ``(process, SinkClient)``."""
    from harness import HERE, free_port, wait_http  # here: the sink process itself does not import the harness

    port = free_port()
    process = stack.start(name, [sys.executable, str(HERE / "fast_sink.py"), str(port)])
    wait_http(port, processes=[process])
    return process, SinkClient(port)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
