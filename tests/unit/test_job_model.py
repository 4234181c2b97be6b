"""The job model: spec normalization and its errors, backoff forms and delays, states."""
import math

import pytest

from tubeway.core.errors import UnknownKind, ValidationError
from tubeway.core.job import (
    ENDED, SPEC_FIELDS, STATES, State, backoff_delay, normalize_backoff, normalize_spec,
)

NOW = 1_000_000.0


def norm(**spec):
    return normalize_spec(spec, now=NOW)


def field_of(spec, **kwargs):
    with pytest.raises(ValidationError) as info:
        normalize_spec(spec, now=NOW, **kwargs)
    return info.value.field


# -- normalize_spec ------------------------------------------------------------------------

def test_defaults_of_a_minimal_spec():
    spec = norm(kind="echo")
    assert spec == {
        "namespace": "default", "queue": "default", "kind": "echo", "payload": None, "priority": 0,
        "run_at": None, "max_attempts": 1,
        "backoff": {"type": "exponential", "delay": 1.0, "max_delay": 3600.0, "jitter": False},
        "timeout": None, "result_ttl": None, "callback_url": None, "unique_key": None, "labels": {},
        "parent": None, "name": None, "annotations": {}, "lifo": False, "keep_done": None,
        "keep_failed": None,
    }


def test_given_values_are_kept():
    spec = norm(namespace="ns", queue="q", kind="k", payload={"a": [1, 2]}, priority=-5, attempts=3,
                timeout=2.5, result_ttl=60, callback_url="https://x.example/cb", unique_key="u",
                labels={"team": "a"}, parent="p-1")
    assert (spec["namespace"], spec["queue"], spec["kind"]) == ("ns", "q", "k")
    assert spec["payload"] == {"a": [1, 2]} and spec["priority"] == -5 and spec["max_attempts"] == 3
    assert spec["timeout"] == 2.5 and spec["result_ttl"] == 60
    assert spec["callback_url"] == "https://x.example/cb" and spec["unique_key"] == "u"
    assert spec["labels"] == {"team": "a"} and spec["parent"] == "p-1"


@pytest.mark.parametrize("spec, field", [
    ({}, "kind"),
    ({"kind": ""}, "kind"),
    ({"kind": 5}, "kind"),
    ({"kind": "k" * 201}, "kind"),
    ({"kind": "k", "namespace": ""}, "namespace"),
    ({"kind": "k", "queue": 3}, "queue"),
    ({"kind": "k", "priority": 1.5}, "priority"),
    ({"kind": "k", "priority": True}, "priority"),
    ({"kind": "k", "priority": 2**31}, "priority"),
    ({"kind": "k", "priority": -2**31}, "priority"),
    ({"kind": "k", "delay": -1}, "delay"),
    ({"kind": "k", "delay": "5"}, "delay"),
    ({"kind": "k", "delay": math.inf}, "delay"),
    ({"kind": "k", "run_at": math.nan}, "run_at"),
    ({"kind": "k", "attempts": 0}, "attempts"),
    ({"kind": "k", "attempts": 10001}, "attempts"),
    ({"kind": "k", "attempts": 2.0}, "attempts"),
    ({"kind": "k", "backoff": "fast"}, "backoff"),
    ({"kind": "k", "backoff": {"type": "random"}}, "backoff"),
    ({"kind": "k", "backoff": {"jitter": "yes"}}, "backoff"),
    ({"kind": "k", "backoff": {"delay": 1, "factor": 2}}, "backoff"),
    ({"kind": "k", "timeout": -0.1}, "timeout"),
    ({"kind": "k", "result_ttl": "1h"}, "result_ttl"),
    ({"kind": "k", "callback_url": "ftp://x"}, "callback_url"),
    ({"kind": "k", "callback_url": 7}, "callback_url"),
    ({"kind": "k", "callback_url": "http://[zz]/"}, "callback_url"), ({"kind": "k", "callback_url": "http:///x"}, "callback_url"),
    ({"kind": "k", "callback_url": "http://:80/"}, "callback_url"),
    ({"kind": "k", "unique_key": ""}, "unique_key"),
    ({"kind": "k", "unique_key": 12}, "unique_key"),
    ({"kind": "k", "labels": ["a"]}, "labels"),
    ({"kind": "k", "labels": {"a": 1}}, "labels"),
    ({"kind": "k", "labels": {"": "x"}}, "labels"),
    ({"kind": "k", "labels": {"a": "v" * 1001}}, "labels"),
    ({"kind": "k", "parent": 42}, "parent"),
    # PostgreSQL text cannot hold NUL: refused as invalid, never a storage error
    ({"kind": "k", "queue": "a\x00"}, "queue"),
    ({"kind": "k\x00"}, "kind"),
    ({"kind": "k", "labels": {"a\x00": "x"}}, "labels"),
    ({"kind": "k", "labels": {"a": "\x00"}}, "labels"),
    ({"kind": "k", "unique_key": "\x00"}, "unique_key"),
    ({"kind": "k", "parent": "p\x00"}, "parent"),
])
def test_each_invalid_field_is_named(spec, field):
    assert field_of(spec) == field


def test_not_an_object():
    with pytest.raises(ValidationError) as info:
        normalize_spec(["kind"])
    assert info.value.field is None


def test_unknown_fields_are_refused_naming_the_first():
    assert field_of({"kind": "k", "zeta": 1, "colour": 2}) == "colour"
    assert set(SPEC_FIELDS) >= {"kind", "delay", "run_at", "attempts"}


def test_bad_backoff_delay_names_backoff():
    assert field_of({"kind": "k", "backoff": {"delay": -1}}) == "backoff"


def test_null_backoff_delay_is_a_validation_error():
    with pytest.raises(ValidationError):
        normalize_backoff({"type": "fixed", "delay": None})


def test_non_string_label_key_is_a_validation_error():
    assert field_of({"kind": "k", "labels": {5: "x"}}) == "labels"


def test_delay_sets_run_at_from_now():
    assert norm(kind="k", delay=30)["run_at"] == NOW + 30


def test_delay_wins_over_run_at():
    assert norm(kind="k", delay=10, run_at=NOW + 500)["run_at"] == NOW + 10


def test_future_run_at_is_kept():
    assert norm(kind="k", run_at=NOW + 1.5)["run_at"] == NOW + 1.5


@pytest.mark.parametrize("extra", [{"run_at": NOW - 1}, {"run_at": NOW}, {"run_at": 0}, {"delay": 0}])
def test_due_now_or_past_means_queued(extra):
    assert norm(kind="k", **extra)["run_at"] is None


def test_known_kinds():
    assert normalize_spec({"kind": "a"}, known_kinds={"a", "b"})["kind"] == "a"
    with pytest.raises(UnknownKind) as info:
        normalize_spec({"kind": "c"}, known_kinds={"a", "b"})
    assert info.value.field == "kind" and isinstance(info.value, ValidationError)
    assert "'c'" in info.value.message


def test_invalid_kind_is_not_reported_as_unknown():
    with pytest.raises(ValidationError) as info:
        normalize_spec({"kind": ""}, known_kinds={"a"})
    assert type(info.value) is ValidationError


# -- backoff -------------------------------------------------------------------------------

def test_backoff_forms():
    assert normalize_backoff(None) == {"type": "exponential", "delay": 1.0, "max_delay": 3600.0, "jitter": False}
    assert normalize_backoff(5) == {"type": "fixed", "delay": 5.0, "max_delay": 3600.0, "jitter": False}
    assert normalize_backoff(2.5)["delay"] == 2.5
    assert normalize_backoff({}) == normalize_backoff(None)
    assert normalize_backoff({"type": "linear", "delay": 2, "max_delay": 10, "jitter": True}) == \
        {"type": "linear", "delay": 2.0, "max_delay": 10.0, "jitter": True}
    with pytest.raises(ValidationError):
        normalize_backoff(True)
    with pytest.raises(ValidationError):
        normalize_backoff(-1)


def test_normalized_backoff_is_a_fixed_point():
    once = normalize_backoff({"type": "linear", "delay": 3})
    assert normalize_backoff(once) == once


def never():
    raise AssertionError("rng called without jitter")


def test_fixed_backoff():
    b = normalize_backoff(4)
    assert [backoff_delay(b, n, rng=never) for n in (1, 2, 7)] == [4.0, 4.0, 4.0]


def test_linear_backoff():
    b = normalize_backoff({"type": "linear", "delay": 2})
    assert [backoff_delay(b, n, rng=never) for n in (1, 2, 3, 10)] == [2.0, 4.0, 6.0, 20.0]


def test_exponential_backoff():
    b = normalize_backoff({"delay": 0.5})
    assert [backoff_delay(b, n, rng=never) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]


def test_default_backoff_when_none():
    assert [backoff_delay(None, n, rng=never) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]


def test_max_delay_caps():
    b = normalize_backoff({"type": "exponential", "delay": 1, "max_delay": 10})
    assert [backoff_delay(b, n, rng=never) for n in (3, 4, 5, 100, 10**6)] == [4.0, 8.0, 10.0, 10.0, 10.0]
    lin = normalize_backoff({"type": "linear", "delay": 3, "max_delay": 7})
    assert backoff_delay(lin, 5, rng=never) == 7.0


def test_zero_delay_means_immediate():
    assert backoff_delay(normalize_backoff(0), 3, rng=never) == 0.0


@pytest.mark.parametrize("r", [0.0, 0.25, 0.999])
def test_jitter_only_lengthens(r):
    b = normalize_backoff({"type": "fixed", "delay": 10, "jitter": True})
    delay = backoff_delay(b, 1, rng=lambda: r)
    assert delay == 10 + 10 * 0.5 * r
    assert 10.0 <= delay < 15.0


# -- states ------------------------------------------------------------------------------

def test_states():
    assert STATES == ["delayed", "queued", "running", "cancelling", "done", "failed", "cancelled"]
    assert {s for s in State if s.ended} == {State.DONE, State.FAILED, State.CANCELLED} == ENDED
    assert State("queued") is State.QUEUED and State.RUNNING == "running"


