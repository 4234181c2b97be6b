"""A loopback HTTP endpoint for worker pushes: each POST/PUT/PATCH body (JSON) goes to one answering function."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JsonEndpoint:
    """Serves ``answer(method, path, body, headers) -> (status, content type, bytes)`` on a free loopback port."""

    def __init__(self, answer):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the pooled client expects

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                status, kind, content = answer(self.command, self.path, body, dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_PUT = do_PATCH = do_POST

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        """The endpoint's URL for ``path``."""
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def close(self):
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()
