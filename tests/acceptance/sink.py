"""A loopback HTTP server that records what it receives (callback targets, worker endpoints)."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink:
    """Records every request; answers with the statuses queued in ``replies`` (then 200)."""

    def __init__(self):
        self.requests = []
        self.replies = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with sink.lock:
                    sink.requests.append({"method": self.command, "path": self.path,
                                          "headers": dict(self.headers), "body": body})
                    status = sink.replies.pop(0) if sink.replies else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_POST = do_PUT = do_GET = do_PATCH = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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
