"""The wire protocol: msgpack bodies, reply bodies, and errors crossing the wire."""
import os

import msgpack
import pytest

from tubeway.core import errors, protocol as p
from tubeway.core.client import _request_ids, _unwrap


@pytest.mark.parametrize("body", [
    None,
    {},
    {"jobs": [{"kind": "k", "payload": {"nested": [1, [2, {"deep": None}]]}}]},
    {"blob": b"\x00\xff\x10binary", "empty": b""},
    {"big": 2**40, "bigger": 2**63 - 1, "max": 2**64 - 1, "neg": -(2**63), "zero": 0},
    {"text": "héllo wörld ✓ 日本 🚀", "ключ": "значение"},
    {"float": 1.5, "tiny": 1e-300, "bool": True, "false": False},
    {1: "int key", "s": "str key"},
    [1, "two", None, [3.0]],
    "just a string",
])
def test_round_trip(body):
    assert p.unpack(p.pack(body)) == body


def test_types_survive():
    out = p.unpack(p.pack({"b": b"abc", "s": "abc", "i": 2**33, "f": 2.0}))
    assert type(out["b"]) is bytes and type(out["s"]) is str
    assert type(out["i"]) is int and type(out["f"]) is float


def test_tuples_become_lists():
    assert p.unpack(p.pack({"key": (1, 2, "x")})) == {"key": [1, 2, "x"]}


def test_pack_is_bytes_that_plain_msgpack_reads():
    frame = p.pack({"a": b"x", "b": "y"})
    assert isinstance(frame, bytes)
    assert msgpack.unpackb(frame, raw=False) == {"a": b"x", "b": "y"}


def test_ints_too_big_for_msgpack_are_refused():
    with pytest.raises(OverflowError):
        p.pack({"n": 2**64})


@pytest.mark.parametrize("frame", [b"\xc1", p.pack({"a": 1})[:-1], p.pack(1) + b"x"])
def test_unpack_rejects_garbage(frame):
    with pytest.raises(ValueError):
        p.unpack(frame)


def test_headers_and_commands_are_distinct():
    assert p.CLIENT != p.WORKER and set(p.HEADERS) == {p.CLIENT, p.WORKER}
    assert not p.CLIENT_COMMANDS & p.WORKER_COMMANDS
    assert p.REPLY not in p.CLIENT_COMMANDS and p.JOBS not in p.WORKER_COMMANDS


def test_ok_body():
    assert p.ok({"ids": ["a"]}) == {"ok": True, "data": {"ids": ["a"]}}
    assert p.ok() == {"ok": True, "data": None}
    assert _unwrap(p.unpack(p.pack(p.ok([1, 2])))) == [1, 2]
    assert _unwrap(p.ok()) is None


def test_failure_body():
    body = p.failure(errors.JobNotFound("no job x", id="x"))
    assert body == {"ok": False, "error": {"code": "not_found", "message": "no job x", "id": "x"}}
    with pytest.raises(errors.JobNotFound) as info:
        _unwrap(p.unpack(p.pack(body)))
    assert info.value.message == "no job x" and info.value.details == {"id": "x"}


def test_failure_without_error_is_still_an_error():
    with pytest.raises(errors.TubewayError):
        _unwrap({"ok": False})


def test_request_ids_are_distinct_and_fixed_size():
    ids = _request_ids()
    seen = [next(ids) for _ in range(1000)]
    assert len(set(seen)) == 1000 and {len(i) for i in seen} == {12}
    assert all(i[:4] == os.getpid().to_bytes(4, "big") for i in seen)  # tells processes apart


# -- errors across the wire ----------------------------------------------------------------

def make(cls):
    if issubclass(cls, errors.ValidationError):
        return cls(f"bad {cls.__name__}", "field_x", 4)
    return cls(f"bad {cls.__name__}", job="j-1", attempt=2)


@pytest.mark.parametrize("code, cls", sorted(errors.CODES.items()))
def test_every_error_class_round_trips(code, cls):
    original = make(cls)
    wire = p.unpack(p.pack(original.to_wire()))
    assert wire["code"] == code == cls.code
    rebuilt = errors.from_wire(wire)
    assert type(rebuilt) is cls
    assert rebuilt.message == original.message == str(rebuilt)
    assert rebuilt.details == original.details
    assert rebuilt.to_wire() == original.to_wire()


def test_codes_are_unique_per_class():
    assert len({cls.code for cls in errors.CODES.values()}) == len(errors.CODES) == 10
    assert all(issubclass(cls, errors.TubewayError) for cls in errors.CODES.values())


def test_validation_error_keeps_field_and_index():
    err = errors.from_wire(errors.ValidationError("bad", "priority", index=3).to_wire())
    assert isinstance(err, errors.ValidationError)
    assert (err.field, err.index, err.message) == ("priority", 3, "bad")
    assert err.to_wire() == {"code": "invalid", "message": "bad", "field": "priority", "index": 3}


def test_validation_error_without_index():
    original = errors.ValidationError("bad", "kind")
    assert original.to_wire() == {"code": "invalid", "message": "bad", "field": "kind"}
    err = errors.from_wire(original.to_wire())
    assert (err.field, err.index) == ("kind", None)


def test_index_zero_is_kept():
    err = errors.from_wire(errors.ValidationError("bad", "kind", index=0).to_wire())
    assert err.index == 0


def test_unknown_kind_is_a_validation_error_on_both_sides():
    err = errors.from_wire(errors.UnknownKind("nope", "kind", 1).to_wire())
    assert isinstance(err, errors.UnknownKind) and isinstance(err, errors.ValidationError)
    assert (err.field, err.index) == ("kind", 1)


def test_unknown_or_missing_code_is_the_base_class():
    err = errors.from_wire({"code": "from_the_future", "message": "m", "extra": 1})
    assert type(err) is errors.TubewayError and err.message == "m" and err.details == {"extra": 1}
    assert type(errors.from_wire({})) is errors.TubewayError


def test_from_wire_does_not_mutate_its_argument():
    wire = {"code": "conflict", "message": "m"}
    errors.from_wire(wire)
    assert wire == {"code": "conflict", "message": "m"}
