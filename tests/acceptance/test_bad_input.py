"""Garbage to every route of a real server: always a 4xx with a message, never a 5xx, and it keeps serving."""
import socket

import pytest
import requests

pytestmark = pytest.mark.acceptance

ROUTES = [
    ("POST", "/jobs"), ("GET", "/jobs/x"), ("PUT", "/jobs/x"), ("DELETE", "/jobs/x"), ("POST", "/want_job"),
    ("POST", "/api/v1/jobs"), ("GET", "/api/v1/jobs"), ("GET", "/api/v1/jobs/x"), ("GET", "/api/v1/queues"),
    ("POST", "/api/v1/jobs/x/retry"), ("POST", "/api/v1/jobs/x/cancel"),
]
BODIES = [
    b"", b"{", b"null", b"[]", b"[{}]", b"\xff\xfe\x00", b'{"queue": {"a": 1}}', b'{"queue": "q", "params": ' +
    b"[" * 200 + b"]" * 200 + b"}", b'"just a string"', b"12345678901234567890", b'{"kind": "noop", "payload": NaN}',
    b'{"status": 5}', b'{"status": "done", "result": ' + b"9" * 5000 + b"}", b'[{"kind": "noop"}, 7]',
    b'{"kind": "noop", "priority": 1e400}', b'{"kind": "noop", "labels": {"a": 1}}', b'{"kind": "noop", "delay": -1}',
    b'{"kind": "noop", "backoff": {"type": "random"}}', b'{"queue": "q", "params": 1, "extra": true}',
]
HEADERS = [
    {}, {"X-Accepted-Priority": "9"}, {"X-Accepted-Delay": "1e9999"}, {"X-Accepted-Block-For": "-1"},
    {"X-Accepted-Timeout": "abc"}, {"X-Accepted-Wait-Result": "1.5"}, {"Content-Type": "text/plain"},
    {"X-Accepted-Result-TTL": "99999999999999999999999"},
]
QUERIES = ["", "?limit=0", "?limit=abc", "?cursor=zz", "?label=nocolon", "?state=", "?queue=&timeout=-5",
           "?block=x"]


def test_garbage_never_gets_a_5xx(server):
    session = requests.Session()
    failures = []
    for method, path in ROUTES:
        for index, body in enumerate(BODIES):
            headers = HEADERS[index % len(HEADERS)]
            query = QUERIES[index % len(QUERIES)]
            response = session.request(method, server.url + path + query, data=body, headers=headers, timeout=30)
            if response.status_code >= 500 or response.status_code < 200:
                failures.append((method, path + query, body[:40], headers, response.status_code, response.text[:200]))
            elif response.status_code >= 400:
                assert response.text, (method, path, body[:40])
    assert failures == []
    assert server.post("/jobs", json={"queue": "still-ok"}).status_code == 202


def test_an_oversized_body_is_413(cluster):
    cluster.up("--processes", "1", "--max-body-size", "1000")
    response = cluster.post("/jobs", data=b'{"queue": "q", "params": "' + b"x" * 5000 + b'"}')
    assert response.status_code == 413 and "error" in response.json()
    chunks = (b"x" * 500 for _ in range(10))
    response = cluster.post("/api/v1/jobs", data=chunks)
    assert response.status_code == 413
    assert cluster.post("/jobs", json={"queue": "q"}).status_code == 202


def test_a_malformed_request_line_does_not_take_the_server_down(server):
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=5) as sock:
        sock.sendall(b"GARBAGE\r\n\r\n")
        sock.recv(1024)
    assert server.post("/jobs", json={"queue": "q"}).status_code == 202
