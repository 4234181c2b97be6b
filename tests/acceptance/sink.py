"""A loopback HTTP server that records what it receives (callback targets, worker endpoints)."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    """A threading server with a listen backlog for dozens of concurrent callers."""

    request_queue_size = 512
    daemon_threads = True


class Sink:
    """Records every request; answers with the statuses queued in ``replies`` (then 200).

    A reply is a status, or ``(status, headers)`` to add headers (a redirect's ``Location``).

    With ``delay`` (seconds) set, each answer is sent that much later (the request is
    recorded at once). A HEAD request is answered without a body.
    """

    def __init__(self):
        self.requests = []
        self.replies = []
        self.delay = 0
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the pooled client expects

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with sink.lock:
                    sink.requests.append({"method": self.command, "path": self.path,
                                          "headers": dict(self.headers), "body": body})
                    reply = sink.replies.pop(0) if sink.replies else 200
                    status, extra = reply if isinstance(reply, tuple) else (reply, {})
                    delay = sink.delay
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "2")
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(b"{}")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test)

            do_POST = do_PUT = do_GET = do_PATCH = do_DELETE = do_HEAD = _handle
            do_ACTION = _handle  # a custom method a real Queue task API client sends

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def json_bodies(self):
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests if r["body"]]
