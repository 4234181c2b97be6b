"""Protocol fuzzing: thousands of malformed messages of every command, as client and as worker.

A real broker (in a thread, on a real SQLite file and a real PostgreSQL schema)
gets frames hypothesis makes from valid messages by breaking them: wrong or
missing headers, truncated and non-msgpack bodies, every field of every command
set to a value of the wrong type or size, unknown fields, worker commands from
peers that never sent READY. After each batch the broker must still answer; at
the end every job storage holds must be well formed and run to its end.
"""
import contextlib
import os
import time

import pytest
import zmq
from hypothesis import HealthCheck, given, settings, strategies as st

from tubeway.core import protocol as p
from tubeway.core.client import BrokerClient
from tubeway.core.job import STATES, normalize_spec
from tubeway.core.schedule import POLICIES
from brokerkit import BrokerThread, ScriptedWorker, poll_until
from pgschema import postgres_schema

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
SPEC = normalize_spec({"kind": "echo", "payload": {"n": 1}})
CLIENT_BODIES = {
    p.SUBMIT: {"jobs": [SPEC]},
    p.GET: {"id": "x", "namespace": "default"},
    p.LIST: {"namespace": "default", "queue": "q", "kind": "echo", "state": "queued", "labels": {"a": "b"},
             "limit": 10, "cursor": "5", "ids": ["x"], "names": ["n"], "queues": ["q"], "states": ["done"],
             "sequences": [1], "selector": [{"key": "a", "op": "in", "values": ["b"]}],
             "created_at": [{"gte": 1.0, "lt": 2.0}], "updated_at": [{"gt": 0}], "order": "-updated", "offset": 0,
             "total": True},
    p.QUEUES: {}, p.RETRY: {"id": "x"}, p.CANCEL: {"id": "x"}, p.DELETE: {"id": "x"},
    p.NOTE: {"id": "x", "lock": "0" * 40, "progress": {"done": 1}, "logs": ["l"], "namespace": "default"},
    p.METADATA: {"id": "x", "labels": {"a": "b", "c": None}, "annotations": {"n": "v"}, "namespace": "default"},
    p.TAKE: {"namespace": "accepted", "kinds": ["external"], "queues": ["q"], "lease": 5, "block": 0},
    p.UPDATE: {"id": "x", "state": "done", "result": 1, "error": None, "lease": 3},
    p.WAIT: {"id": "x", "timeout": 0}, p.HEALTH: {}, p.METRICS: {},
    p.SCHEDULE_ADD: {"id": "fz", "job": SPEC, "period": 3600, "offset": 0, "policy": "every"},
    p.SCHEDULE_GET: {"namespace": "default", "id": "fz"},
    p.SCHEDULE_LIST: {"namespace": "default", "queue": "q", "limit": 10, "cursor": "5"},
    p.SCHEDULE_DELETE: {"namespace": "default", "id": "fz"},
    p.ENDPOINT_SET: {"namespace": "default", "queue": "q", "url": "http://127.0.0.1:9/x", "method": "POST",
                     "headers": {"a": "b"}, "timeout": 1.5, "concurrency": 2},
    p.ENDPOINT_LIST: {"namespace": "default"},
    p.ENDPOINT_DELETE: {"namespace": "default", "queue": "q"},
}
WORKER_BODIES = {
    p.READY: {"kinds": ["echo"], "queues": None, "credit": 4, "pid": 1, "host": "h"},
    p.HEARTBEAT: {"held": ["x"], "seen": 1},
    p.RESULTS: {"results": [{"id": "x", "attempt": 1, "lease": 1.0, "state": "done", "result": 1, "error": None,
                             "retry": None, "logs": ["l"], "progress": 1, "duration": 0.1,
                             "spawn": [SPEC], "await": 1}], "started": ["x"], "credit": 3},
    p.DISCONNECT: {},
}

values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**63, max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30), st.binary(max_size=30),
    st.lists(st.one_of(st.integers(-5, 5), st.text(max_size=5)), max_size=4),
    st.dictionaries(st.text(max_size=8), st.one_of(st.integers(-2**63, 2**64 - 1), st.text(max_size=8)), max_size=4),
    st.text(min_size=201, max_size=300),
)


@st.composite
def broken_body(draw, template):
    """A template body with one part broken: a field set to any value, dropped, added, or nested in."""
    body = dict(template)
    how = draw(st.sampled_from(["set", "drop", "add", "nested", "whole"]))
    keys = sorted(body) or ["x"]
    if how == "set":
        body[draw(st.sampled_from(keys))] = draw(values)
    elif how == "drop" and body:
        body.pop(draw(st.sampled_from(keys)))
    elif how == "add":
        body[draw(st.text(max_size=10))] = draw(values)
    elif how == "nested":
        for key in ("jobs", "results", "spawn"):
            if isinstance(body.get(key), list) and body[key]:
                inner = dict(body[key][0])
                inner[draw(st.sampled_from(sorted(inner)))] = draw(values)
                body[key] = [inner]
        if isinstance(body.get("job"), dict):
            body["job"] = {**body["job"], draw(st.sampled_from(sorted(body["job"]))): draw(values)}
    else:
        return draw(values)
    return body


def frames_for(draw_body, header, command, bodies, request_id=True):
    return st.builds(lambda body, rid: [header, command, *([rid] if request_id else []), p.pack(body)],
                     draw_body(bodies[command]), st.binary(max_size=8))


client_messages = st.sampled_from(sorted(CLIENT_BODIES)).flatmap(
    lambda command: frames_for(broken_body, p.CLIENT, command, CLIENT_BODIES))
worker_messages = st.sampled_from(sorted(WORKER_BODIES)).flatmap(
    lambda command: frames_for(broken_body, p.WORKER, command, WORKER_BODIES, request_id=False))
raw_messages = st.one_of(
    st.lists(st.binary(max_size=40), min_size=1, max_size=6),
    st.tuples(st.sampled_from([p.CLIENT, p.WORKER, b"TWC9", b""]), st.binary(max_size=12),
              st.binary(max_size=60)).map(list),
    st.builds(lambda m, cut: m[:-1] + [m[-1][:cut]], client_messages, st.integers(0, 5)),
    st.builds(lambda m, cut: m[:-1] + [m[-1][:cut]], worker_messages, st.integers(0, 5)),
)
messages = st.one_of(client_messages, worker_messages, raw_messages)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fuzzed(request, tmp_path_factory):
    with contextlib.ExitStack() as stack:
        url = (f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/tubeway.db" if request.param == "sqlite"
               else stack.enter_context(postgres_schema("tw_fuzz")))
        yield from _fuzzed_broker(url)


def _fuzzed_broker(url):
    broker = BrokerThread(url, heartbeat_seconds=0.2, worker_liveness_seconds=2.0).start()
    peers = [zmq.Context.instance().socket(zmq.DEALER) for _ in range(3)]
    for peer in peers:
        peer.setsockopt(zmq.LINGER, 0)
        peer.connect(broker.endpoint)
    client = BrokerClient(broker.endpoint, timeout=10)
    try:
        yield broker, peers, client
    finally:
        client.close()
        for peer in peers:
            peer.close(0)
        broker.stop()


WRONG = [None, True, -1, 0, 2**64 - 1, 1.5, float("nan"), float("inf"), "", "x", "x" * 300, b"\xff", [], [1],
         ["a", 2], {}, {"a": 1}, {"": None}]


def sweep(bodies):
    """Every body with each field (and each field of a nested object, or of the first of a list of them) set to
    each wrong value."""
    for command, template in sorted(bodies.items()):
        for key in sorted(template):
            for value in WRONG:
                yield command, {**template, key: value}
            nested = template[key]
            if isinstance(nested, list) and nested and isinstance(nested[0], dict):
                for inner in sorted(nested[0]):
                    for value in WRONG:
                        yield command, {**template, key: [{**nested[0], inner: value}]}
            elif isinstance(nested, dict):
                for inner in sorted(nested):
                    for value in WRONG:
                        yield command, {**template, key: {**nested, inner: value}}
        for value in WRONG:
            yield command, value


def test_every_field_of_every_command_with_every_wrong_type(fuzzed):
    broker, peers, client = fuzzed
    sent = 0
    for command, body in sweep(CLIENT_BODIES):
        peers[0].send_multipart([p.CLIENT, command, b"r", p.pack(body)])
        sent += 1
    for command, body in sweep(WORKER_BODIES):
        peers[sent % 3].send_multipart([p.WORKER, command, p.pack(body)])
        sent += 1
        if sent % 200 == 0:
            assert client.health(timeout=10)["workers"] >= 0
            _drain(peers)
    assert sent > 1000
    assert client.health(timeout=10)["workers"] >= 0 and broker.thread.is_alive()
    _drain(peers)


def _drain(peers):
    for peer in peers:
        while peer.poll(0):
            peer.recv_multipart()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(batch=st.lists(st.tuples(st.integers(0, 2), messages), min_size=1, max_size=25))
def test_the_broker_survives_any_frames_and_keeps_serving(fuzzed, batch):
    broker, peers, client = fuzzed
    for peer_index, frames in batch:
        peers[peer_index].send_multipart(frames)
    assert client.health(timeout=10)["workers"] >= 0  # the loop still turns
    assert broker.thread.is_alive()
    _drain(peers)


def test_after_the_fuzz_storage_is_intact_and_every_job_runs_to_its_end(fuzzed):
    broker, peers, client = fuzzed
    for schedule in _all_schedules(client):  # well formed, and removed so no new runs come
        assert isinstance(schedule["job"]["kind"], str) and schedule["policy"] in POLICIES
        assert schedule["period"] is None or schedule["period"] > 0
        client.delete_schedule(schedule["id"], namespace=schedule["namespace"])
    jobs = _all_jobs(client)
    for job in jobs:
        assert job["state"] in STATES and isinstance(job["priority"], int) and isinstance(job["kind"], str)
        assert isinstance(job["attempts"], int) and 1 <= job["max_attempts"] <= 10000
    [fresh] = client.submit([SPEC])["ids"]
    kinds = sorted({job["kind"] for job in jobs} | {"echo"})
    worker = ScriptedWorker(broker.endpoint, kinds=kinds, credit=1000)

    def all_due_jobs_ended():
        for got in worker.drain():
            worker.finish(got, result="ran")
        return not [job for job in _all_jobs(client) if _due(job, soon)]
    soon = time.time() + 30
    poll_until(all_due_jobs_ended, timeout=60, what="every job due ended")
    assert client.get(fresh)["state"] == "done"
    worker.close()


def _due(job, soon):
    """True for a job that should end within the test: not one delayed, leased or waiting for children past it."""
    if job["state"] == "delayed":
        return job["run_at"] < soon
    if job["state"] == "running":
        return job["worker"] is not None and (job["lease_until"] or 0) < soon
    return job["state"] == "queued"


def _pages(fetch, key):
    """Every item of a listing read page by page with its keyset cursor."""
    found, cursor = [], None
    while True:
        page = fetch(limit=1000, cursor=cursor)
        found.extend(page[key])
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def _all_schedules(client):
    return _pages(client.list_schedules, "schedules")


def _all_jobs(client):
    return _pages(client.list_jobs, "jobs")
