"""A bare Tornado app, the yardstick of the HTTP submit benchmark.

One process, no broker: ``POST`` on any path answers ``201`` with a small JSON body
(a fresh id, like a submitted job); ``GET /healthz`` answers 200 for readiness.
Run: ``python tests/perf/bare_tornado.py PORT`` (listens on 127.0.0.1 only).
"""
import asyncio
import signal
import sys
import uuid

import tornado.web


class SubmitHandler(tornado.web.RequestHandler):
    """Answers any POST with ``201 {"id": ...}``."""

    def post(self, *_):
        self.set_status(201)
        self.set_header("Content-Type", "application/json")
        self.write(b'{"id":"%s"}' % str(uuid.uuid4()).encode())


class HealthHandler(tornado.web.RequestHandler):
    """``GET /healthz``: 200."""

    def get(self):
        self.write({"ok": True})


async def main(port):
    app = tornado.web.Application([(r"/healthz", HealthHandler), (r"/(.*)", SubmitHandler)])
    server = app.listen(port, address="127.0.0.1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
