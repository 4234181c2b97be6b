"""What the broker accepts from a worker: every field of every command checked, and drops logged sparingly."""
import logging

import pytest

from tubeway.broker.wire import DropLog, Malformed, check_worker_message
from tubeway.core import protocol as p

GOOD = {
    p.READY: {"kinds": ["echo"], "queues": None, "credit": 4, "pid": 1, "host": "box"},
    p.HEARTBEAT: {"held": ["j1"], "seen": 3},
    p.RESULTS: {"results": [{"id": "j1", "attempt": 1, "lease": 1.5, "state": "done", "result": {"a": 1},
                             "error": None, "retry": None, "logs": ["x"], "progress": 5, "duration": 0.1,
                             "spawn": [], "await": 0}], "started": ["j2"], "credit": 8},
    p.DISCONNECT: {},
}


@pytest.mark.parametrize("command", list(GOOD))
def test_well_formed_messages_pass(command):
    check_worker_message(command, GOOD[command])


@pytest.mark.parametrize("command, body", [
    (p.READY, {"kinds": ["echo"], "credit": "x"}),
    (p.READY, {"kinds": ["echo"], "credit": 0}),
    (p.READY, {"kinds": ["echo"], "credit": True}),
    (p.READY, {"kinds": ["echo"], "credit": 2.9}),
    (p.READY, {"kinds": ["echo"], "credit": 10**12}),
    (p.READY, {"kinds": "echo"}),
    (p.READY, {"kinds": [1]}),
    (p.READY, {"kinds": ["echo"], "queues": "q"}),
    (p.READY, {"kinds": ["echo"], "pid": "1"}),
    (p.READY, {}),
    (p.HEARTBEAT, {"held": "j1"}),
    (p.HEARTBEAT, {"held": [1]}),
    (p.HEARTBEAT, {"held": [], "seen": -1}),
    (p.RESULTS, {"results": {}}),
    (p.RESULTS, {"results": [1]}),
    (p.RESULTS, {"results": [{"id": 1, "attempt": 1, "state": "done"}]}),
    (p.RESULTS, {"results": [{"id": "j", "attempt": "1", "state": "done"}]}),
    (p.RESULTS, {"results": [{"id": "j", "attempt": 1, "state": "exploded"}]}),
    (p.RESULTS, {"results": [{"id": "j", "attempt": 1, "state": "failed", "error": {"no": "string"}}]}),
    (p.RESULTS, {"results": [{"id": "j", "attempt": 1, "state": "done", "logs": "line"}]}),
    (p.RESULTS, {"results": [{"id": "j", "attempt": 1, "state": "done", "spawn": {}}]}),
    (p.RESULTS, {"results": [{"id": "j", "attempt": 1, "state": "done", "await": -1}]}),
    (p.RESULTS, {"started": "j"}),
    (p.RESULTS, {"credit": 0}),
    (b"EXPLODE", {}),
    (p.DISCONNECT, []),
])
def test_malformed_messages_are_refused_naming_the_problem(command, body):
    with pytest.raises(Malformed):
        check_worker_message(command, body)


def test_drops_are_logged_at_most_once_per_interval_and_counted(caplog):
    now = [100.0]
    drops = DropLog(logging.getLogger("test.drops"), interval=5.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.drops"):
        for _ in range(50):
            drops.dropped_message(b"\x01peer", "bad")
        now[0] += 6
        drops.dropped_message(b"\x01peer", "bad again")
    assert drops.dropped == 51
    assert len(caplog.records) == 2 and "49 more dropped" in caplog.records[1].getMessage()


@pytest.mark.parametrize("raw", [b"\xc1", b"\x91" * 5000 + b"\x01", b"\x81\x91\x01\x01", b"\xa2\xff\xfe",
                                 b"\xd4\x05\x00"])
def test_undecodable_bodies_raise_value_error(raw):
    with pytest.raises(ValueError):
        p.unpack(raw)
