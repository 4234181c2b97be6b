"""CPU per HTTP call of Tubeway's client beside the layers under it, for the ``callbacks`` benchmark.

Tubeway's ``http`` kind calls through ``requests`` (the stack's HTTP client), which
calls through urllib3, which calls through the standard library's ``http.client``.
Each layer costs CPU per call; on a machine where the broker, the workers and the
sink share two cores, that cost decides how many calls per second fit. This module
measures the three in this process, against the same sink, with the same number of
threads as a worker's ``http`` pool, so the ``callbacks`` row can be read against
what each layer allows.
"""
import os
import threading
from urllib.parse import urlsplit

import orjson
import urllib3

from tubeway.plugins.builtin import http_client

BODY = {"bench": "client-cost"}
HEADERS = {"Content-Type": "application/json"}


def _tubeway(url):
    def call():
        response = http_client.send("POST", url, 30.0, json=BODY, stream=True)
        try:
            http_client.read_start(response, 65536, 30.0, "POST", url)
        finally:
            response.close()
    return call


def _urllib3(url):
    pool = urllib3.PoolManager(maxsize=64)

    def call():
        response = pool.urlopen("POST", url, body=orjson.dumps(BODY), headers=HEADERS, preload_content=False,
                                retries=False, timeout=urllib3.Timeout(30.0, 30.0))
        response.read(65536)
        response.release_conn()
    return call


def _http_client(url):
    import http.client

    parts, local = urlsplit(url), threading.local()

    def call():
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30.0)
        connection.request("POST", parts.path, body=orjson.dumps(BODY), headers=HEADERS)
        connection.getresponse().read(65536)
    return call


#: The layers measured, top (what the ``http`` kind uses) to bottom.
LAYERS = {"tubeway client (requests)": _tubeway, "urllib3 alone": _urllib3, "http.client alone": _http_client}


def cpu_per_call(call, calls, threads):
    """Microseconds of this process's CPU (user + system) per call, ``calls`` spread over ``threads``."""
    for _ in range(20):
        call()  # connections open, caches warm
    per_thread = max(1, calls // threads)

    def loop():
        for _ in range(per_thread):
            call()

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    before = os.times()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    after = os.times()
    used = (after.user - before.user) + (after.system - before.system)
    return 1e6 * used / (per_thread * threads)


def measure(url, calls=4000, threads=16, rounds=3):
    """``{layer: microseconds of CPU per call}``, the best of ``rounds`` (rounds interleave the layers)."""
    calls_of = {name: make(url) for name, make in LAYERS.items()}
    best = {}
    for _ in range(rounds):
        for name, call in calls_of.items():
            cost = cpu_per_call(call, calls, threads)
            best[name] = min(best.get(name, cost), cost)
    return best
